package localvpc

import (
	"os"
	"path/filepath"
	"strings"
)

// agentLogTail is the end of a node's agent.log, for an error that outlives
// the node: callers usually remove the run, log included, right after a
// failed start, so the file the error names is gone by the time a user
// reads it.
func (n *Node) agentLogTail(maxLines int) string {
	data, err := os.ReadFile(filepath.Join(n.Dir, "agent.log"))
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "---- ") {
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			lines = append(lines, l)
		}
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n    ")
}

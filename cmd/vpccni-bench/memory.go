package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

func memoryFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 7, Key: keyMemory, Title: "agent resident memory and binary sizes",
		Method: prose(`From /proc/<pid>/status of the ipamd process on node 'warm' (m5.4xlarge, WARM_IP_TARGET=%d): RssAnon
			(heap, stacks: what the agent's state costs), RssFile (pages of the binary and libraries: shared,
			reclaimable) and VmRSS (their sum plus shared memory); once with the pool settled and no pods, once 2 s
			after the %dth pod's ADD (the pods stay for figure 8). One reading each; Go's heap grows in steps.
			'installer' is the aws-vpc-cni entrypoint if it stays resident beside ipamd (0 if it is gone). With
			VPC_CNI_KUBE_APISERVER and VPC_CNI_ETCD, ours runs against a real kube-apiserver+etcd (pkg/localkube)
			with its Node object registered, so its Kubernetes caches (node and the node's pods) are live; the
			compare agent runs without one (the side-by-side setting). Binary sizes are the files' sizes.`,
			c.WarmIPs, c.MemPods),
	}
}

// procMem is one process's memory, in bytes, from /proc/<pid>/status.
type procMem struct {
	RSS, Anon, File int64
}

func readProcMem(pid int) (procMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, fmt.Errorf("memory of %d: %w", pid, err)
	}
	defer f.Close()
	var m procMem
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		dst, ok := fields[fs[0]]
		if !ok {
			continue
		}
		if len(fs) != 3 || fs[2] != "kB" {
			return m, fmt.Errorf("memory of %d: unexpected %q", pid, sc.Text())
		}
		kb, err := strconv.ParseInt(fs[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("memory of %d: %w", pid, err)
		}
		*dst = kb * 1024
		seen++
	}
	if seen != len(fields) {
		return m, fmt.Errorf("memory of %d: VmRSS, RssAnon or RssFile missing from /proc/%d/status", pid, pid)
	}
	return m, nil
}

// agentMem is the memory of the node's agent processes: ipamd and, when
// it stays resident, the installer.
type agentMem struct {
	ipamd, installer procMem
}

// agentMemory reads the current side's agent processes on n.
func (r *run) agentMemory(n *localvpc.Node) (agentMem, error) {
	var m agentMem
	pid, err := findProcess(n.AgentPID(), r.side.ipamdComm())
	if err != nil {
		return m, err
	}
	if m.ipamd, err = readProcMem(pid); err != nil {
		return m, err
	}
	if r.side.bins == nil {
		if ipid, err := findProcess(n.AgentPID(), localvpc.InstallerBin); err == nil {
			if m.installer, err = readProcMem(ipid); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}

// memValues are figure 7's values for one reading.
func memValues(label string, m agentMem) []bench.Value {
	return []bench.Value{
		mib(label+": ipamd RssAnon", m.ipamd.Anon),
		mib(label+": ipamd RssFile", m.ipamd.File),
		mib(label+": ipamd VmRSS", m.ipamd.RSS),
		mib(label+": installer VmRSS", m.installer.RSS),
		mib(label+": ipamd + installer VmRSS", m.ipamd.RSS+m.installer.RSS),
	}
}

// binarySizes are the sizes of the current side's agent binaries.
func (r *run) binarySizes() ([]bench.Value, error) {
	files := []struct{ name, path string }{
		{"ipamd binary", filepath.Join(r.cfg.BinDir, localvpc.IPAMDBin)},
		{"plugin binary (aws-cni)", filepath.Join(r.cfg.BinDir, localvpc.PluginBin)},
	}
	if r.side.bins != nil {
		files = []struct{ name, path string }{{"ipamd binary", r.side.bins.IPAMD}, {"plugin binary (aws-cni)", r.side.bins.Plugin}}
	} else if r.cfg.Agent == "installer" {
		files = append(files, struct{ name, path string }{"installer binary (aws-vpc-cni)", filepath.Join(r.cfg.BinDir, localvpc.InstallerBin)})
	}
	var vs []bench.Value
	for _, f := range files {
		st, err := os.Stat(f.path)
		if err != nil {
			return nil, fmt.Errorf("binary size: %w", err)
		}
		vs = append(vs, mib(f.name, st.Size()))
	}
	return vs, nil
}

// findProcess finds a process by comm: the agent process itself
// (localvpc execs it through nsenter) or one of its descendants.
func findProcess(agent int, comm string) (int, error) {
	if agent <= 0 {
		return 0, fmt.Errorf("agent not running")
	}
	queue := []int{agent}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(c)) == comm {
			return pid, nil
		}
		queue = append(queue, children(pid)...)
	}
	return 0, fmt.Errorf("no %s process under agent pid %d", comm, agent)
}

package entry

import (
	"fmt"
	"io"

	"github.com/containernetworking/cni/pkg/types"
)

// MaxStdin caps the network configuration a plugin reads from stdin. A
// conflist entry with its runtimeConfig and a prevResult for a multi-NIC
// pod is a few KiB; 1 MiB leaves room for any real one while a runtime that
// streams without end (or a huge file) costs the plugin at most that much
// memory instead of all the node's.
const MaxStdin = 1 << 20

// readStdin reads the whole network configuration, refusing more than
// MaxStdin bytes before anything is parsed or wired.
func readStdin(r io.Reader) ([]byte, *types.Error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxStdin+1))
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("error reading from stdin: %v", err), "")
	}
	if len(b) > MaxStdin {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("stdin (the network configuration) is over %d bytes (1 MiB), the most a plugin reads", MaxStdin), "")
	}
	return b, nil
}

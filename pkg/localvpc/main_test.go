package localvpc

import (
	"os"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
)

// TestMain removes the agent binaries the tests built (agentbin.Main).
func TestMain(m *testing.M) { os.Exit(agentbin.Main(m)) }

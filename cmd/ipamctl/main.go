// Command ipamctl shows a node's warm pool at a glance: the ENIs with their
// addresses or prefixes used, free and cooling, the warm targets in force,
// and what ipamd is waiting on. It reads ipamd's introspection endpoint.
//
//	ipamctl [-addr 127.0.0.1:61679 | -addr unix:/path] [-json] pool   (flags may also follow pool)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ipamctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", introspect.DefaultBindAddress, "ipamd introspection address: host:port or unix:<path>")
	asJSON := fs.Bool("json", false, "print the raw /v1/pool JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ipamctl [flags] pool\n\nShows ipamd's warm pool: ENIs, addresses used/free/cooling, targets, and what ipamd waits on.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // help was asked for
		}
		return 2
	}
	switch {
	case fs.NArg() == 0:
		fmt.Fprintln(stderr, "ipamctl: no command (the command is pool)")
		fs.Usage()
		return 2
	case fs.Arg(0) != "pool":
		fmt.Fprintf(stderr, "ipamctl: unknown command %q (the command is pool)\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	// Flags after the command too (`ipamctl pool -json`), as users type them.
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ipamctl: unexpected argument %q after pool\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, err := fetch(ctx, *addr, "/v1/pool")
	if err != nil {
		fmt.Fprintf(stderr, "ipamctl: %v\n", err)
		return 1
	}
	if err := checkPool(body); err != nil {
		fmt.Fprintf(stderr, "ipamctl: ipamd at %s: %v\n", *addr, err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(append(body, '\n'))
		return 0
	}
	var pool introspect.Pool
	if err := json.Unmarshal(body, &pool); err != nil {
		fmt.Fprintf(stderr, "ipamctl: decode /v1/pool from %s: %v\n", *addr, err)
		return 1
	}
	render(stdout, pool, time.Now())
	return 0
}

func fetch(ctx context.Context, addr, path string) ([]byte, error) {
	// No proxy: ipamd is on this node, but aws-node's env (where ipamctl
	// runs) may carry HTTP(S)_PROXY for EC2, and Go proxies any address
	// that is not loopback.
	tr := &http.Transport{Proxy: nil}
	client := &http.Client{Transport: tr}
	url := "http://" + addr + path
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		url = "http://ipamd" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bad address %q: %w", addr, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ipamd introspection at %s unreachable (is ipamd running, DISABLE_INTROSPECTION unset? on a localvpc node, run ipamctl in the node's network namespace as `localvpc up` prints): %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status + ": " + strings.TrimSpace(string(body)))
	}
	return body, nil
}

// checkPool refuses the answer of an ipamd that has no /v1/pool: upstream's
// (and ours before the path) answers any unknown path with 200 and its list
// of paths, which would otherwise read as an empty pool.
func checkPool(body []byte) error {
	var other struct{ AvailableCommands []string }
	if json.Unmarshal(body, &other) == nil && other.AvailableCommands != nil {
		return fmt.Errorf("no /v1/pool here (upstream's or an older ipamd); it serves %s", strings.Join(other.AvailableCommands, " "))
	}
	return nil
}

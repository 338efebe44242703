package podnettest

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// connectTimeout bounds a connection expected to work: on a loaded
// machine connecting and echoing can take seconds. probeTimeout bounds one
// expected to fail, where dropped packets only time out.
const (
	connectTimeout = 10 * time.Second
	probeTimeout   = 3 * time.Second
)

// Connect proves that a TCP connection from namespace src reaches address
// ip inside namespace dst and that data flows both ways. The listener is
// bound to ip, so the connection must really arrive at that address.
func Connect(src, dst string, ip net.IP) error { return connect(src, dst, ip, connectTimeout) }

// Probe is Connect for a connection expected to fail: it gives up sooner.
func Probe(src, dst string, ip net.IP) error { return connect(src, dst, ip, probeTimeout) }

func connect(src, dst string, ip net.IP, timeout time.Duration) error {
	var ln net.Listener
	err := ns.WithNetNSPath(dst, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		return err
	})
	if err != nil {
		return fmt.Errorf("listen on %s in %s: %w", ip, dst, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			served <- err
			return
		}
		_, err = c.Write(buf)
		served <- err
	}()

	err = ns.WithNetNSPath(src, func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)), timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return fmt.Errorf("echo returned %q", buf)
		}
		return nil
	})
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("connect from %s to %s: %w", src, ip, err)
	}
	if err := <-served; err != nil {
		return fmt.Errorf("serve %s: %w", ip, err)
	}
	return nil
}

package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// WhoamiPort is the TCP port of the whoami service: it writes the caller's
// source address as seen on arrival, then closes. The internet namespace,
// the VPC's echo addresses and pods run it, so a test can observe NAT.
const WhoamiPort = 7777

// ListenIn opens a TCP listener inside the network namespace at nsPath. The
// socket stays in that namespace; Accept may be called from any goroutine.
func ListenIn(nsPath string, addr netip.AddrPort) (net.Listener, error) {
	var l net.Listener
	err := InNS(nsPath, func() error {
		var err error
		l, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, nsPath, err)
	}
	return l, nil
}

// DialIn opens a TCP connection from inside the namespace at nsPath. A valid
// local address binds the source (used to test the source check).
func DialIn(ctx context.Context, nsPath string, local netip.Addr, remote netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := InNS(nsPath, func() error {
		d := net.Dialer{}
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		var err error
		c, err = d.DialContext(ctx, "tcp", remote.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", remote, nsPath, err)
	}
	return c, nil
}

// unreachablePause spaces the dials of a whoami whose neighbour discovery
// gave up.
const unreachablePause = 50 * time.Millisecond

// Whoami connects from the namespace at nsPath to a whoami service and
// returns the source address the service saw. While the connect fails
// with EHOSTUNREACH it dials again until ctx ends: a fresh link's first
// neighbour discovery can give up before the peer answers on a loaded
// machine, and the path is simply not there yet. Dropped packets (a
// blocked path) still only time out.
func Whoami(ctx context.Context, nsPath string, local netip.Addr, remote netip.AddrPort) (netip.Addr, error) {
	c, err := DialIn(ctx, nsPath, local, remote)
	for errors.Is(err, unix.EHOSTUNREACH) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(unreachablePause):
			c, err = DialIn(ctx, nsPath, local, remote)
		}
	}
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read whoami reply from %s: %w", remote, err)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(line))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("whoami reply from %s: %w", remote, err)
	}
	return a, nil
}

// ServeWhoami starts a whoami service on addr inside the namespace at
// nsPath. Closing the returned Closer stops it.
func ServeWhoami(nsPath string, addr netip.AddrPort) (io.Closer, error) {
	l, err := ListenIn(nsPath, addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, ap.Addr().Unmap().String()+"\n")
			}()
		}
	}()
	return l, nil
}

// httpService is an HTTP handler served on a listener opened in a namespace.
type httpService struct {
	srv *http.Server
	l   net.Listener
}

func serveHTTP(log *slog.Logger, nsPath string, addr netip.AddrPort, h http.Handler) (*httpService, error) {
	l, err := ListenIn(nsPath, addr)
	if err != nil {
		return nil, err
	}
	s := &httpService{l: l, srv: &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second,
		// IMDS answers token PUTs with the instance's hop limit as TTL
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return vpcsim.WithConnTTLSetter(ctx, func(ttl int) error { return setConnTTL(c, ttl) })
		},
	}}
	go func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("service stopped", "addr", addr.String(), "err", err)
		}
	}()
	return s, nil
}

func (s *httpService) Close() error { return s.srv.Close() }

// setConnTTL sets the TTL (IPv6: hop limit) of the packets an accepted
// connection sends from now on, retransmissions included.
func setConnTTL(c net.Conn, ttl int) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("set TTL: %T is not a TCP connection", c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set TTL: %w", err)
	}
	level, opt := unix.IPPROTO_IP, unix.IP_TTL
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok && la.IP.To4() == nil {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, ttl) }); err != nil {
		return fmt.Errorf("set TTL: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set TTL %d on %s: %w", ttl, c.LocalAddr(), serr)
	}
	return nil
}

// closers closes a set of io.Closers once.
type closers struct {
	mu sync.Mutex
	cs []io.Closer
}

func (c *closers) add(x io.Closer) {
	c.mu.Lock()
	c.cs = append(c.cs, x)
	c.mu.Unlock()
}

func (c *closers) closeAll() error {
	c.mu.Lock()
	cs := c.cs
	c.cs = nil
	c.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

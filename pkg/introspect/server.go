package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// DefaultBindAddress is upstream's INTROSPECTION_BIND_ADDRESS default:
// loopback only, because /v1/enis names every pod on the node.
const DefaultBindAddress = "127.0.0.1:61679"

// Source is what the server reads; ipamd implements it. Implementations
// return copies: the server marshals them without locks.
type Source interface {
	ENIs() map[int]CardENIs
	// ENIConfigName is the ENIConfig this node resolves to; an error means
	// the node could not be read (the endpoint answers 404, as upstream).
	ENIConfigName(ctx context.Context) (string, error)
	NetworkEnv() NetworkEnv
	IPAMDEnv() IPAMDEnv
	Pool() Pool
}

// Paths upstream serves, in the order its AvailableCommands lists them.
var upstreamPaths = []string{"/v1/enis", "/v1/eni-configs", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings"}

// Handler serves the introspection paths from src.
func Handler(src Source, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/enis", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, log, src.ENIs()) })
	mux.HandleFunc("/v1/eni-configs", func(w http.ResponseWriter, r *http.Request) {
		name, err := src.ENIConfigName(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, log, name)
	})
	mux.HandleFunc("/v1/networkutils-env-settings", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, log, src.NetworkEnv()) })
	mux.HandleFunc("/v1/ipamd-env-settings", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, log, src.IPAMDEnv()) })
	mux.HandleFunc("/v1/pool", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, log, src.Pool()) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, log, map[string][]string{"AvailableCommands": append(append([]string(nil), upstreamPaths...), "/v1/pool")})
	})
	return logRequests(mux, log)
}

func writeJSON(w http.ResponseWriter, log *slog.Logger, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Error("introspection: encode response", "err", err)
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func logRequests(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Debug("introspection request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		next.ServeHTTP(w, r)
	})
}

// Listen opens the introspection listener: "host:port" for TCP or
// "unix:<path>" for a Unix socket (a stale socket file is replaced).
func Listen(bind string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(bind, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("introspection: INTROSPECTION_BIND_ADDRESS %q has an empty socket path", bind)
		}
		// Only a socket is replaced: a typo naming another file (the
		// checkpoint, say) must not delete it.
		if st, err := os.Lstat(path); err == nil && st.Mode().Type() != os.ModeSocket {
			kind := "a " + st.Mode().Type().String() + " file"
			switch {
			case st.Mode().IsRegular():
				kind = "a regular file"
			case st.IsDir():
				kind = "a directory"
			}
			return nil, fmt.Errorf("introspection: INTROSPECTION_BIND_ADDRESS %q names %s, not a socket; not replacing it", bind, kind)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("introspection: remove stale socket %s: %w", path, err)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("introspection: listen on %s: %w", bind, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("introspection: listen on %s: %w", bind, err)
	}
	return ln, nil
}

// Serve serves src on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, src Source, log *slog.Logger) error {
	srv := &http.Server{Handler: Handler(src, log), ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("introspection: serve: %w", err)
	}
	return nil
}

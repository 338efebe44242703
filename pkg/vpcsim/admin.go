package vpcsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// AdminHandler serves the JSON admin API:
//
//	GET    /stats            call counters (Stats)
//	GET    /state            every instance, ENI and subnet (State)
//	GET    /faults           current Faults
//	PUT    /faults           replace Faults (POST works too)
//	POST   /instances        run an instance (body: InstanceSpec) → InstanceView
//	GET    /instances/{id}   one instance (EC2 view) → InstanceView
//	DELETE /instances/{id}   terminate an instance
//	GET    /sgdrops          packets each ENI's security groups dropped ([]SGDrop)
func (s *Sim) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.State()) })
	mux.HandleFunc("GET /sgdrops", s.serveSGDrops)
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Faults()) })
	setFaults := func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := decodeJSON(r.Body, &f); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf("faults: %w", err))
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	}
	mux.HandleFunc("PUT /faults", setFaults)
	mux.HandleFunc("POST /faults", setFaults)
	mux.HandleFunc("POST /instances", func(w http.ResponseWriter, r *http.Request) {
		var spec InstanceSpec
		if err := decodeJSON(r.Body, &spec); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf("instance spec: %w", err))
			return
		}
		v, err := s.RunInstance(spec)
		if err != nil {
			writeJSONError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusCreated, v)
	})
	mux.HandleFunc("GET /instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Instance(r.PathValue("id"))
		if err != nil {
			writeJSONError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("DELETE /instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.TerminateInstance(r.PathValue("id")); err != nil {
			writeJSONError(w, statusOf(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "InvalidInstanceID.NotFound" {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error(), "code": ErrorCode(err)})
}

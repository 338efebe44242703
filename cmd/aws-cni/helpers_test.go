package main

import (
	"encoding/json"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const healthNotServing = healthpb.HealthCheckResponse_NOT_SERVING

func statusError(code, msg string) error {
	c := map[string]codes.Code{"ResourceExhausted": codes.ResourceExhausted, "FailedPrecondition": codes.FailedPrecondition}[code]
	return status.Error(c, msg)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

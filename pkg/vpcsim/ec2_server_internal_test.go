package vpcsim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// An action that wraps an *APIError with context (as runInstance does for
// the primary ENI's attachment) answers with the wrapped EC2 code, not
// InternalError; an error that is no APIError at all still becomes
// InternalError. No real action wraps reachably today, so the test
// registers its own for the duration of the test (no test here runs in
// parallel, so nothing else reads the table meanwhile).
func TestWrappedAPIErrorKeepsItsCode(t *testing.T) {
	s, err := New(propertyScenario())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	actions["TestWrappedError"] = struct{ fn actionFunc }{fn: func(*Sim, *params) (any, error) {
		return nil, fmt.Errorf("attach primary ENI: %w", apiErr("AttachmentLimitExceeded", "Interface count 4 exceeds the limit for t3.medium"))
	}}
	actions["TestPlainError"] = struct{ fn actionFunc }{fn: func(*Sim, *params) (any, error) {
		return nil, errors.New("not an EC2 error")
	}}
	t.Cleanup(func() {
		delete(actions, "TestWrappedError")
		delete(actions, "TestPlainError")
	})
	srv := httptest.NewServer(s.EC2Handler())
	t.Cleanup(srv.Close)

	for action, want := range map[string]struct {
		status int
		code   string
	}{
		"TestWrappedError": {400, "AttachmentLimitExceeded"},
		"TestPlainError":   {500, "InternalError"},
	} {
		resp, err := http.PostForm(srv.URL, url.Values{"Action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.status || !strings.Contains(string(b), "<Code>"+want.code+"</Code>") {
			t.Errorf("%s: HTTP %d %s, want %d with code %s", action, resp.StatusCode, b, want.status, want.code)
		}
		if got := s.Stats().Errors[action][want.code]; got != 1 {
			t.Errorf("%s: stats count %d errors %s, want 1 (stats %+v)", action, got, want.code, s.Stats().Errors[action])
		}
	}
}

package vpcsim

// launch is a RunInstances call made with a ClientToken. A retry with the
// token answers the same reservation, so the record outlives its instances
// (terminated instances stay in the world as well).
type launch struct {
	wire string   // every parameter as sent but the action, version and token
	ids  []string // the instances it launched, in launch order
}

// launchRetry returns the instances the launch with this token made; nil if
// the token is new (or empty); IdempotentParameterMismatch if the token
// came with other parameters.
func (w *world) launchRetry(token, wire string) ([]*instance, error) {
	l, ok := w.launches[token]
	if token == "" || !ok {
		return nil, nil
	}
	if l.wire != wire {
		return nil, errTokenMismatch(token)
	}
	out := make([]*instance, 0, len(l.ids))
	for _, id := range l.ids {
		out = append(out, w.instances[id])
	}
	return out, nil
}

// recordLaunch keeps what a launch with a token made, for its retries.
func (w *world) recordLaunch(token, wire string, made []*instance) {
	if token == "" {
		return
	}
	l := &launch{wire: wire}
	for _, in := range made {
		in.token = token
		l.ids = append(l.ids, in.id)
	}
	w.launches[token] = l
}

func errTokenMismatch(token string) *APIError {
	return apiErr("IdempotentParameterMismatch", "The client token %s was already used with different parameters.", token)
}

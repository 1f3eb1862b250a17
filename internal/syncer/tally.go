package syncer

import (
	"context"
	"sync/atomic"
)

// Tally counts what one run spent talking to impact.com. The API client adds
// to the tally carried by the request's context, so concurrent runs of one
// account keep separate counts.
type Tally struct {
	Requests       atomic.Uint64 // HTTP requests sent
	RateLimited    atomic.Uint64 // 429 responses received
	RateLimitWaits atomic.Uint64 // times the client waited for the rate limit (429 or pacing)
	Retries        atomic.Uint64 // requests repeated after a transient failure
	Windows        atomic.Uint64 // date windows queried (after splitting)
}

type tallyKey struct{}

// WithTally returns a context whose API requests are counted in t.
func WithTally(ctx context.Context, t *Tally) context.Context {
	return context.WithValue(ctx, tallyKey{}, t)
}

// TallyFrom returns the context's tally, or a throwaway one.
func TallyFrom(ctx context.Context) *Tally {
	if t, ok := ctx.Value(tallyKey{}).(*Tally); ok && t != nil {
		return t
	}
	return &Tally{}
}

package bus

import (
	"context"
	"errors"

	"github.com/hornbeam-go/hornbeam/metrics"
)

// outcome names an error as the rpc metrics count it.
func outcome(err error) metrics.Result {
	var re *RemoteError
	switch {
	case err == nil:
		return metrics.OK
	case errors.Is(err, ErrTimeout):
		return metrics.Timeout
	case errors.Is(err, ErrNodeDown):
		return metrics.NodeDown
	case errors.Is(err, ErrBadRPC):
		return metrics.BadRPC
	case errors.Is(err, ErrBusy):
		return metrics.Busy
	case errors.As(err, &re):
		return metrics.RemoteError
	default:
		return metrics.Error
	}
}

// servedOutcome names how serving a call ended, as the caller hears it: a
// deadline that passed is a timeout, any other error but a missing function
// reaches the caller as a remote error.
func servedOutcome(ctx context.Context, err error) metrics.Result {
	switch {
	case err == nil:
		return metrics.OK
	case ctx.Err() != nil:
		return metrics.Timeout
	case errors.Is(err, ErrBadRPC):
		return metrics.BadRPC
	default:
		return metrics.RemoteError
	}
}

package replay

import "context"

// prefetchSource reads a source ahead in its own goroutine, in batches, so
// that parsing the workload overlaps replaying it. Events are copied
// (Params included): a source's Event is only valid until its next Next.
type prefetchSource struct {
	batches chan []Event
	quit    chan struct{}
	done    chan struct{}
	cur     []Event
	i       int
	ev      Event
	err     error // set by the reader goroutine before it closes batches
}

const prefetchBatch = 256

func newPrefetchSource(ctx context.Context, src EventSource) *prefetchSource {
	p := &prefetchSource{
		batches: make(chan []Event, 8),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		defer close(p.batches)
		batch := make([]Event, 0, prefetchBatch)
		send := func() bool {
			select {
			case p.batches <- batch:
				batch = make([]Event, 0, prefetchBatch)
				return true
			case <-p.quit:
				return false
			case <-ctx.Done():
				return false
			}
		}
		for src.Next() {
			ev := src.Event()
			if ev.Params != nil {
				ev.Params = append([]Param(nil), ev.Params...)
			}
			batch = append(batch, ev)
			if len(batch) == prefetchBatch && !send() {
				return
			}
		}
		p.err = src.Err()
		if len(batch) > 0 {
			send()
		}
	}()
	return p
}

// Next advances to the next event.
func (p *prefetchSource) Next() bool {
	for p.i >= len(p.cur) {
		b, ok := <-p.batches
		if !ok {
			return false
		}
		p.cur, p.i = b, 0
	}
	p.ev = p.cur[p.i]
	p.cur[p.i] = Event{}
	p.i++
	return true
}

// Event is the current event.
func (p *prefetchSource) Event() Event { return p.ev }

// peek returns the event after the current one without advancing, waiting
// for the reader if need be; false at the end.
func (p *prefetchSource) peek() (*Event, bool) {
	for p.i >= len(p.cur) {
		b, ok := <-p.batches
		if !ok {
			return nil, false
		}
		p.cur, p.i = b, 0
	}
	return &p.cur[p.i], true
}

// Err is the source's error; call it only after Next returned false.
func (p *prefetchSource) Err() error {
	<-p.done
	return p.err
}

// close stops the reader goroutine and waits for it.
func (p *prefetchSource) close() {
	close(p.quit)
	for range p.batches {
	}
	<-p.done
}

package replay

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Concurrent mode.
//
// The dispatcher reads the workload (at the recorded pace when
// EngineOptions.Speed > 0) and appends each event to its session's queue;
// every session has its own worker goroutine and connection and runs its
// queue in order. Nothing waits for another session, so a slow statement
// stalls only its own session (until EngineOptions.MaxBacklog events are
// read ahead of the workers). EngineOptions.MaxConns bounds the sessions
// connected at once (a session holds its slot from its first event to its
// disconnect).

type concurrentSession struct {
	s      *replaySession
	mu     sync.Mutex
	queue  []Event
	notify chan struct{} // cap 1: the queue grew
}

func (cs *concurrentSession) push(ev Event) {
	cs.mu.Lock()
	cs.queue = append(cs.queue, ev)
	cs.mu.Unlock()
	select {
	case cs.notify <- struct{}{}:
	default:
	}
}

// pop waits for the next event; false when ctx ends first.
func (cs *concurrentSession) pop(ctx context.Context) (Event, bool) {
	for {
		cs.mu.Lock()
		if len(cs.queue) > 0 {
			ev := cs.queue[0]
			cs.queue[0] = Event{}
			cs.queue = cs.queue[1:]
			cs.mu.Unlock()
			return ev, true
		}
		cs.mu.Unlock()
		select {
		case <-cs.notify:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

func (e *engine) runConcurrent(ctx context.Context, src EventSource) error {
	var slots chan struct{}
	if e.opts.MaxConns > 0 {
		slots = make(chan struct{}, e.opts.MaxConns)
	}
	backlog := make(chan struct{}, e.opts.MaxBacklog)
	open := map[string]*concurrentSession{}
	var order []*concurrentSession
	var wg sync.WaitGroup
	defer wg.Wait()

	worker := func(cs *concurrentSession) {
		s := cs.s
		defer s.close()
		if slots != nil {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return
			}
		}
		for {
			ev, ok := cs.pop(ctx)
			if !ok {
				return
			}
			<-backlog
			switch ev.Kind {
			case KindConnect:
				s.noteConnect(&ev)
				if err := s.connect(ctx); err != nil && ctx.Err() == nil {
					e.log.Warn("replay session could not connect; its statements will retry", "session", s.id, "err", err)
				}
			case KindDisconnect:
				return
			case KindStatement:
				if res, interrupted := s.exec(ctx, &ev); !interrupted {
					e.emit(res)
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
	enqueue := func(ev Event) bool {
		select {
		case backlog <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		cs, ok := open[ev.Session]
		if !ok {
			cs = &concurrentSession{s: newReplaySession(e, ev.Session), notify: make(chan struct{}, 1)}
			open[ev.Session] = cs
			order = append(order, cs)
			e.stats.sessions.Add(1)
			wg.Go(func() { worker(cs) })
		}
		cs.push(ev)
		if ev.Kind == KindDisconnect {
			delete(open, ev.Session)
			if len(order) > 64 && len(order) > 2*len(open) {
				order = slices.DeleteFunc(order, func(c *concurrentSession) bool { return open[c.s.id] != c })
			}
		}
		return true
	}

	var t0 time.Time
	wall0 := time.Now()
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	for src.Next() {
		if ctx.Err() != nil || e.writeFailed() {
			return nil
		}
		ev := src.Event()
		if e.opts.Speed > 0 && !ev.Time.IsZero() {
			if t0.IsZero() {
				t0 = ev.Time
			}
			at := wall0.Add(time.Duration(float64(ev.Time.Sub(t0)) / e.opts.Speed))
			if d := time.Until(at); d > 0 {
				pace.Reset(d)
				select {
				case <-pace.C:
				case <-ctx.Done():
					return nil
				}
			}
		}
		if !enqueue(ev) {
			return nil
		}
	}
	if err := src.Err(); err != nil {
		return fmt.Errorf("read workload: %w", err)
	}
	for _, cs := range order {
		if open[cs.s.id] == cs {
			if !enqueue(Event{Kind: KindDisconnect, Session: cs.s.id}) {
				return nil
			}
		}
	}
	return nil
}

package replay

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// captureLog writes the events the capture proxy records as a dbtwin JSONL
// workload (WorkloadWriter, header source "proxy"), in Seq order.
//
// Statements are numbered when they start (start order is what the replay
// engine needs), but their outcome (duration, error, or whether the server
// ran them at all: after an error the extended protocol skips the rest of a
// batch) is known only when the response arrives. So every event takes a
// place in a queue when it starts and is written once it and every event
// before it are settled; Seq is assigned at write time, so Seq has no gaps
// even when events are dropped. If maxPending events wait behind an
// unsettled one (a very long statement), the oldest is written as it is,
// without its outcome, to bound memory.
type captureLog struct {
	mu         sync.Mutex
	w          *WorkloadWriter
	queue      []*captureTicket
	seq        int64
	maxPending int
	written    *atomic.Int64 // counts events written, for ProxyStats
	err        error
}

type ticketState uint8

const (
	ticketPending ticketState = iota
	ticketDone
	ticketDropped
	ticketWritten
)

// captureTicket is an event's place in the output order.
type captureTicket struct {
	ev    Event
	state ticketState
}

func newCaptureLog(w io.Writer, maxPending int, written *atomic.Int64) (*captureLog, error) {
	ww, err := NewWorkloadWriter(w, WorkloadHeader{Source: "proxy"})
	if err != nil {
		return nil, err
	}
	return &captureLog{w: ww, maxPending: maxPending, written: written}, nil
}

// begin takes the next place in the output order for ev.
func (l *captureLog) begin(ev Event) *captureTicket {
	t := &captureTicket{ev: ev}
	l.mu.Lock()
	l.queue = append(l.queue, t)
	l.writeReady()
	l.mu.Unlock()
	return t
}

// complete settles t with its outcome and writes what is ready.
func (l *captureLog) complete(t *captureTicket, d time.Duration, e *CapturedError) {
	l.mu.Lock()
	if t.state == ticketPending {
		t.ev.Duration = d
		t.ev.Error = e
		t.state = ticketDone
		l.writeReady()
	}
	l.mu.Unlock()
}

// drop settles t as never run: it is not written.
func (l *captureLog) drop(t *captureTicket) {
	l.mu.Lock()
	if t.state == ticketPending {
		t.state = ticketDropped
		l.writeReady()
	}
	l.mu.Unlock()
}

// record writes an event whose outcome is already known.
func (l *captureLog) record(ev Event) {
	t := l.begin(ev)
	l.complete(t, ev.Duration, ev.Error)
}

func (l *captureLog) writeReady() {
	i := 0
	for ; i < len(l.queue); i++ {
		t := l.queue[i]
		if t.state == ticketPending && len(l.queue)-i <= l.maxPending {
			break
		}
		if t.state != ticketDropped {
			l.write(t)
		}
		l.queue[i] = nil
	}
	if i > 0 {
		l.queue = append(l.queue[:0], l.queue[i:]...)
	}
}

func (l *captureLog) write(t *captureTicket) {
	t.state = ticketWritten
	if l.err != nil {
		return
	}
	l.seq++
	t.ev.Seq = l.seq
	l.err = l.w.Write(t.ev)
	l.written.Add(1)
}

// flush writes what is buffered.
func (l *captureLog) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	return l.err
}

// close writes every queued event, settled or not, and flushes.
func (l *captureLog) close() error {
	l.mu.Lock()
	for _, t := range l.queue {
		if t.state == ticketPending || t.state == ticketDone {
			l.write(t)
		}
	}
	l.queue = nil
	l.mu.Unlock()
	return l.flush()
}

package replay

import (
	"slices"
	"time"
)

// Filter selects part of a workload. Each non-empty criterion must match;
// the zero Filter keeps everything.
//
// Database, user and application criteria apply to every event of a
// session (events carry them). The time window applies to each event's
// Time: From inclusive, To exclusive; events without a time (logs whose
// prefix has no timestamp) pass it. A session whose connect event falls
// outside the window but whose statements fall inside gets a connect event
// made up just before its first kept statement, and a disconnect is kept
// only for a session whose connect was kept.
type Filter struct {
	// Databases keeps sessions connected to one of these databases.
	Databases []string
	// Users keeps sessions of one of these users.
	Users []string
	// Applications keeps sessions whose application_name is one of these.
	Applications []string
	// From and To bound event times; zero means unbounded.
	From, To time.Time
}

// IsZero reports whether f keeps everything.
func (f Filter) IsZero() bool {
	return len(f.Databases) == 0 && len(f.Users) == 0 && len(f.Applications) == 0 && f.From.IsZero() && f.To.IsZero()
}

// Match reports whether ev passes every criterion of f.
func (f Filter) Match(ev Event) bool {
	if len(f.Databases) > 0 && !slices.Contains(f.Databases, ev.Database) {
		return false
	}
	if len(f.Users) > 0 && !slices.Contains(f.Users, ev.User) {
		return false
	}
	if len(f.Applications) > 0 && !slices.Contains(f.Applications, ev.Application) {
		return false
	}
	if !ev.Time.IsZero() {
		if !f.From.IsZero() && ev.Time.Before(f.From) {
			return false
		}
		if !f.To.IsZero() && !ev.Time.Before(f.To) {
			return false
		}
	}
	return true
}

// emitter is the last stage of every Reader: it applies the Filter, makes
// up connect events for sessions whose first kept event is a statement, and
// numbers events.
type emitter struct {
	filter     Filter
	synthesize bool // make up missing connect events
	renumber   bool // assign Seq from 1
	st         *statsKeeper

	seq       int64
	connected map[string]int64 // sessions whose connect was emitted → last event
	n         int64            // events pushed
	out       []Event          // ready events, oldest first
	head      int
}

func newEmitter(f Filter, synthesize, renumber bool, st *statsKeeper) *emitter {
	return &emitter{filter: f, synthesize: synthesize, renumber: renumber, st: st, connected: map[string]int64{}}
}

// push offers one event in capture order.
func (e *emitter) push(ev Event) {
	if !e.filter.IsZero() && !e.filter.Match(ev) {
		e.st.skip(SkipFiltered)
		return
	}
	e.n++
	_, connected := e.connected[ev.Session]
	switch ev.Kind {
	case KindConnect:
		e.connected[ev.Session] = e.n
	case KindDisconnect:
		if e.synthesize && !connected {
			e.st.skip(SkipFiltered)
			return
		}
		delete(e.connected, ev.Session)
	default:
		if e.synthesize && !connected {
			e.add(Event{Session: ev.Session, Time: ev.Time, Kind: KindConnect,
				Database: ev.Database, User: ev.User, Application: ev.Application, Source: ev.Source})
		}
		e.connected[ev.Session] = e.n
	}
	if len(e.connected) > maxSessions {
		e.forget()
	}
	e.add(ev)
}

// forget drops the least recently active half of the sessions that never
// disconnected (logs without log_disconnections), bounding memory; such a
// session, if it speaks again, gets a second connect event.
func (e *emitter) forget() {
	seen := make([]int64, 0, len(e.connected))
	for _, n := range e.connected {
		seen = append(seen, n)
	}
	slices.Sort(seen)
	cut := seen[len(seen)/2]
	for s, n := range e.connected {
		if n < cut {
			delete(e.connected, s)
		}
	}
}

func (e *emitter) add(ev Event) {
	if e.renumber {
		e.seq++
		ev.Seq = e.seq
	}
	e.out = append(e.out, ev)
}

// pop returns the next ready event.
func (e *emitter) pop() (Event, bool) {
	if e.head == len(e.out) {
		e.out, e.head = e.out[:0], 0
		return Event{}, false
	}
	ev := e.out[e.head]
	e.out[e.head] = Event{}
	e.head++
	return ev, true
}

package replay

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The capture log writes events in start order, numbered without gaps,
// once each and every earlier event is settled; dropped events vanish;
// too many events behind an unsettled one force it out.
func TestCaptureLogOrder(t *testing.T) {
	var buf bytes.Buffer
	var n atomic.Int64
	l, err := newCaptureLog(&buf, 3, &n)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(sql string) Event {
		return Event{Session: "1", Kind: KindStatement, SQL: sql, Time: time.Unix(1, 0)}
	}
	a := l.begin(ev("a"))
	b := l.begin(ev("b"))
	c := l.begin(ev("c"))
	l.complete(b, time.Millisecond, nil)
	l.drop(c)
	if n.Load() != 0 {
		t.Fatalf("wrote %d events while the first is unsettled", n.Load())
	}
	l.complete(a, 2*time.Millisecond, &CapturedError{SQLState: "22012", Message: "division by zero"})
	if n.Load() != 2 {
		t.Fatalf("wrote %d events, want 2", n.Load())
	}
	slow := l.begin(ev("slow"))
	for _, s := range []string{"d", "e", "f", "g"} {
		l.complete(l.begin(ev(s)), time.Millisecond, nil)
	}
	l.complete(slow, time.Second, nil) // too late: it was forced out
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	evs := pxEvents(t, buf.Bytes())
	var got []string
	for _, e := range evs {
		got = append(got, e.SQL)
	}
	if s := strings.Join(got, ","); s != "a,b,slow,d,e,f,g" {
		t.Errorf("written %s, want a,b,slow,d,e,f,g", s)
	}
	if evs[0].Error == nil || evs[0].Duration != 2*time.Millisecond || evs[2].Duration != 0 {
		t.Errorf("outcomes: %+v", evs[:3])
	}
}

package replay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// lineReader reads lines of at most max bytes with bounded memory; a longer
// line is skipped, with a warning, without being held in memory.
type lineReader struct {
	br   *bufio.Reader
	st   *statsKeeper
	max  int
	n    int64 // number of the line last returned
	long []byte
	err  error
}

func newLineReader(br *bufio.Reader, st *statsKeeper, max int) *lineReader {
	return &lineReader{br: br, st: st, max: max}
}

// next returns the next line without its "\n" (a "\r" before it is removed
// too) and its number; the slice is valid until the next call. false at the
// end of input or on a read error (see err).
func (l *lineReader) next() ([]byte, int64, bool) {
	for {
		if l.err != nil {
			return nil, l.n, false
		}
		line, err := l.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			l.long = append(l.long[:0], line...)
			tooLong := false
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = l.br.ReadSlice('\n')
				if !tooLong && len(l.long)+len(line) > l.max {
					tooLong = true
					l.long = l.long[:0]
				}
				if !tooLong {
					l.long = append(l.long, line...)
				}
			}
			if tooLong {
				l.n++
				l.st.st.Lines++
				l.st.warn(l.n, fmt.Sprintf("line longer than %d bytes skipped", l.max), nil)
				if err != nil {
					l.setErr(err)
				}
				continue
			}
			line = l.long
		}
		if err != nil {
			l.setErr(err)
			if len(line) == 0 {
				return nil, l.n, false
			}
		}
		l.n++
		l.st.st.Lines++
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
		}
		return line, l.n, true
	}
}

func (l *lineReader) setErr(err error) {
	if errors.Is(err, io.EOF) {
		l.err = io.EOF
		return
	}
	l.err = fmt.Errorf("read %s:%d: %w", l.st.st.Name, l.n+1, err)
}

// readErr returns the read error that ended the input, nil at a clean end.
func (l *lineReader) readErr() error {
	if l.err == io.EOF {
		return nil
	}
	return l.err
}

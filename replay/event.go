package replay

import "time"

// FormatVersion is the version of dbtwin's JSONL workload format. A reader
// refuses a file whose header names a newer version.
const FormatVersion = 1

// Kind says what an Event is.
type Kind string

// The kinds of workload events.
const (
	// KindConnect opens a session (a client connection): Database, User and
	// Application say as whom.
	KindConnect Kind = "connect"
	// KindStatement is one statement the session ran. With the simple
	// protocol SQL is the whole query string (it may hold several statements
	// separated by semicolons, as the client sent it); with the extended
	// protocol SQL is the prepared text and Params are the bound values.
	KindStatement Kind = "statement"
	// KindDisconnect closes a session.
	KindDisconnect Kind = "disconnect"
)

// Event is one thing that happened in a captured workload, in the order it
// happened. Every reader (PostgreSQL stderr/csvlog/jsonlog logs, the capture
// proxy, dbtwin's JSONL) produces Events; the replay engine consumes them.
//
// Transaction boundaries are statements like any other (BEGIN, COMMIT,
// ROLLBACK, SAVEPOINT …): the replay engine runs them as captured, so a
// transaction block is kept intact and an error inside it aborts it exactly
// as PostgreSQL did.
type Event struct {
	// Seq orders events across the whole workload: strictly increasing in
	// capture order, starting at 1.
	Seq int64 `json:"seq"`
	// Session identifies the client connection (log %c, "pid.start" or the
	// proxy's connection number). Events of one session replay on one
	// connection, in Seq order.
	Session string `json:"session"`
	// Time is when the event started, as captured.
	Time time.Time `json:"time"`
	// Kind is connect, statement or disconnect.
	Kind Kind `json:"kind"`

	// Database, User and Application describe the session; set on connect
	// events and, where the source knows them, on every event.
	Database    string `json:"database,omitempty"`
	User        string `json:"user,omitempty"`
	Application string `json:"application,omitempty"`

	// SQL is the statement text (statement events).
	SQL string `json:"sql,omitempty"`
	// Params are the bind parameters of an extended-protocol statement, in
	// order ($1, $2, …). Nil for the simple protocol.
	Params []Param `json:"params,omitempty"`
	// Prepared names the prepared statement the client used ("" for the
	// unnamed statement or the simple protocol).
	Prepared string `json:"prepared,omitempty"`

	// Duration is how long the statement took when captured, if known.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Error is the SQLSTATE and message the statement failed with when
	// captured, if it did.
	Error *CapturedError `json:"error,omitempty"`

	// Source locates the event in its input ("postgresql.log:1234"), for
	// messages about it.
	Source string `json:"source,omitempty"`
}

// Param is one bind parameter value.
type Param struct {
	// Value is the parameter in text form; nil is SQL NULL.
	Value *string `json:"value"`
	// TypeOID is the parameter's type as the client declared it (0: let the
	// server infer it, as logs do not record types).
	TypeOID uint32 `json:"type,omitempty"`
	// Binary is set when the client sent the value in binary format; Value
	// then holds it base64-encoded.
	Binary bool `json:"binary,omitempty"`
}

// CapturedError is an error a statement raised when it was captured.
type CapturedError struct {
	// SQLState is the five-character SQLSTATE code ("23505"), if known.
	SQLState string `json:"sqlstate,omitempty"`
	// Message is the server's primary message.
	Message string `json:"message"`
}

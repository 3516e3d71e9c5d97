// Package masking rewrites sensitive values on their way into a dbtwin
// sandbox, so that nothing in a clone can identify a person, while keys,
// joins and the shape of the data survive.
//
// What it is for:
//
//   - Transforms ([Transform], built by [NewTransform]): keyed, deterministic
//     functions of a secret key ([Keyring], from DBTWIN_MASK_KEY), a domain
//     name (every column holding the same entity shares one) and the value's
//     text form. Keys and unique columns get bijections — a Feistel
//     permutation for integers and UUIDs, FF1 format-preserving encryption
//     (NIST SP 800-38G) for digit and letter strings — so they cannot collide.
//     Fakes (names, e-mails, addresses, cards, IBANs …) are chosen by an
//     HMAC-SHA256 of the value. The same key, domain and value give the same
//     output in every table and every run; [AlgorithmVersion] and the
//     embedded dictionaries are versioned together.
//   - Rules ([ParseRules]): one YAML file gives every column of every table
//     an explicit decision (mask, keep, null, default) or a declared default;
//     a column without one fails the run (fail closed). [NewPlan] checks the
//     rules against a live [Catalog]: foreign-key closure, collision-prone
//     transforms on unique columns, type and length fit.
//   - The COPY stream ([Plan.Table], [FilterCopyBinary], [FilterCopyText]):
//     masked tables are decoded while they stream, from binary COPY where
//     every column the masker converts has a binary codec (text types,
//     json/jsonb, integers, uuid, date, inet/cidr: the servers then skip
//     the text conversion of every column), from text COPY otherwise;
//     transformed and re-encoded; kept columns pass through byte for byte;
//     memory is bounded by one row.
//   - Detection ([Scan]): scores columns by name, type and sampled values and
//     proposes a rules file. It never prints a sampled value.
//     [Plan.CheckReasons] refuses a run that keeps a high-confidence PII
//     column without a written reason.
//   - Workload masking ([Plan.MaskEvent]): literals and bind parameters that
//     compare against masked columns get the same transform, so replayed
//     lookups still find their rows.
//   - Verification ([Audit]): key and foreign-key constraints hold on the
//     clone, and no sampled original value survives in its domain.
//
// What it is not for: it does not copy data (package clone does, and calls
// [FilterCopyText]), it does not read environment variables or flags (the CLI
// reads DBTWIN_MASK_KEY and passes the key in), and it is not encryption for
// storage: transforms are one-way for whoever does not hold the key, but
// bijective transforms are reversible by whoever does.
//
// Nothing in this package writes a key or an unmasked value into an error,
// a log line or a report. Errors name the table, column, row number and
// transform instead.
package masking

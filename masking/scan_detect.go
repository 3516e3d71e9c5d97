package masking

import (
	"math"
	"net/netip"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// nameHints map column (and JSON key) names to kinds. Immutable.
var nameHints = []struct {
	re   *regexp.Regexp
	kind PIIKind
}{
	{regexp.MustCompile(`e_?mail`), KindEmail},
	{regexp.MustCompile(`phone|mobile|msisdn|(^|_)tel($|_)|(^|_)fax($|_)`), KindPhone},
	{regexp.MustCompile(`card_?(number|num|no)$|(^|_)pan($|_)|cc_?(number|num)|credit_?card`), KindCard},
	{regexp.MustCompile(`iban|bank_?account|account_?number`), KindIBAN},
	{regexp.MustCompile(`ssn|social_?security|national_?id|(^|_)nino($|_)|passport|tax_?(id|number)|vat_?(id|number)|personal_?id`), KindNationalID},
	{regexp.MustCompile(`(^|_)ip($|_)|ip_?addr|remote_addr|client_addr`), KindIP},
	{regexp.MustCompile(`birth|(^|_)dob($|_)`), KindBirthDate},
	{regexp.MustCompile(`(^|_)(first|last|full|given|family|middle|sur|display|contact|maiden|person)_?name|holder`), KindPersonName},
	{regexp.MustCompile(`street|address|addr_?line`), KindAddress},
	{regexp.MustCompile(`(^|_)city|(^|_)town($|_)`), KindCity},
	{regexp.MustCompile(`postal|(^|_)zip|postcode`), KindPostcode},
	{regexp.MustCompile(`password|passwd|secret|token|api_?key|private_?key|(^|_)salt($|_)`), KindSecret},
	{regexp.MustCompile(`body|(^|_)notes?$|comment|description|message|subject|(^|_)text$|reason|remarks?`), KindFreeText},
}

// nameHint returns the kind a column or key name suggests.
func nameHint(name string) (PIIKind, string) {
	n := strings.ToLower(name)
	for _, h := range nameHints {
		if h.re.MatchString(n) {
			return h.kind, "name suggests " + string(h.kind)
		}
	}
	return "", ""
}

var (
	reWholeEmail = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	reJWT        = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$`)
	reSSN        = regexp.MustCompile(`^\d{3}-\d{2}-\d{4}$`)
	reNINO       = regexp.MustCompile(`^[A-Za-z]{2}\d{6}[A-Da-d]$`)
	rePhoneWhole = regexp.MustCompile(`^\+?[\d\s().\-/]{7,22}$`)
	reUUID       = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)
	reStreet     = regexp.MustCompile(`(?i)^\d+[a-z]?,? [\p{L}' .-]+ (street|st|road|rd|avenue|ave|lane|ln|way|drive|dr|boulevard|blvd|close|court|place|terrace)\.?$|(?i)^[\p{L}' .-]+(straße|strasse|weg|gasse|platz|allee|laan|straat|gracht|rue|via|calle|avenida) ?\d*`)
	rePostcode   = regexp.MustCompile(`^[A-Za-z0-9]{2,5}[ -]?[A-Za-z0-9]{2,4}$`)
)

// wholeValueKind returns the kind v is as a whole ("" if none).
func wholeValueKind(v string, hint PIIKind) PIIKind {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 200 {
		return ""
	}
	switch {
	case reWholeEmail.MatchString(v):
		return KindEmail
	case reJWT.MatchString(v):
		return KindSecret
	case reSSN.MatchString(v) || reNINO.MatchString(v):
		return KindNationalID
	}
	digits := countDigits([]byte(v))
	if digits >= 13 && digits <= 19 && strings.Trim(v, "0123456789 -") == "" && luhnValid([]byte(v)) {
		return KindCard
	}
	var buf [34]byte
	if c, ok := compactIBAN(buf[:0], []byte(v)); ok && ibanValid(c) {
		return KindIBAN
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return KindIP
	}
	if _, err := netip.ParsePrefix(v); err == nil && strings.ContainsAny(v, ".:") {
		return KindIP
	}
	if rePhoneWhole.MatchString(v) && digits >= 7 && digits <= 15 &&
		(hint == KindPhone || strings.HasPrefix(v, "+") || strings.ContainsAny(v, " ()-.")) && !looksLikeDate(v) {
		return KindPhone
	}
	if hint == KindPostcode && len(v) <= 10 && rePostcode.MatchString(v) {
		return KindPostcode
	}
	if hint == KindCity && len(v) <= 60 && !strings.ContainsAny(v, "0123456789@") {
		return KindCity
	}
	if reStreet.MatchString(v) || hint == KindAddress && digits > 0 && digits < 8 && strings.ContainsRune(v, ' ') {
		return KindAddress
	}
	if isPersonName(v, hint) {
		return KindPersonName
	}
	if !strings.ContainsAny(v, " \t\n") && len(v) >= 24 && !reUUID.MatchString(v) && entropy(v) >= 4.2 {
		return KindSecret
	}
	return ""
}

func looksLikeDate(v string) bool {
	return len(v) == 10 && (v[4] == '-' && v[7] == '-' || v[2] == '.' && v[5] == '.' || v[2] == '/' && v[5] == '/')
}

// isPersonName: one to four words, the first a known first name (or any
// capitalised word when the column's name says it holds names).
func isPersonName(v string, hint PIIKind) bool {
	words := strings.Fields(v)
	if len(words) == 0 || len(words) > 4 || len(v) > 80 {
		return false
	}
	for _, w := range words {
		r, _ := utf8.DecodeRuneInString(w)
		if !unicode.IsLetter(r) || strings.ContainsAny(w, "0123456789@") {
			return false
		}
	}
	d := nameSets()
	first := strings.ToLower(words[0])
	if d.first[first] && (len(words) > 1 || hint == KindPersonName) {
		return true
	}
	if hint == KindPersonName {
		r, _ := utf8.DecodeRuneInString(words[0])
		return unicode.IsUpper(r) || !unicode.IsLower(r)
	}
	return len(words) >= 2 && d.last[strings.ToLower(words[len(words)-1])] && d.first[first]
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

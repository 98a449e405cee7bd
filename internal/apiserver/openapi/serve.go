package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/munnerz/goautoneg"
)

// representation is one encoding of a document, with its gzipped form
// made on first use.
type representation struct {
	body []byte
	etag string // unquoted

	gzipOnce sync.Once
	gzipped  []byte // nil when compressing does not pay
}

func newRepresentation(body []byte) *representation {
	// Upstream's ETag and hash: the SHA-512 of the JSON, in upper-case
	// hex.
	return &representation{body: body, etag: fmt.Sprintf("%X", sha512.Sum512(body))}
}

func (r *representation) gzip() []byte {
	r.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression) // the level is valid
		if _, err := zw.Write(r.body); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		if buf.Len() < len(r.body) {
			r.gzipped = buf.Bytes()
		}
	})
	return r.gzipped
}

// offer is a media type a path serves: asked for as accept, answered as
// contentType from the document's JSON or protobuf encoding.
type offer struct {
	accept, contentType string
	proto               bool
}

// negotiate picks the offer the Accept header prefers; an empty header
// takes the first offer, an offer of */* takes any request.
func negotiate(accept string, offers []offer) (offer, bool) {
	if strings.TrimSpace(accept) == "" {
		return offers[0], true
	}
	for _, clause := range goautoneg.ParseAccept(accept) {
		if clause.Q <= 0 {
			continue
		}
		for _, o := range offers {
			if o.accept == "*/*" {
				return o, true
			}
			typ, sub, _ := strings.Cut(o.accept, "/")
			if (clause.Type == typ || clause.Type == "*") && (clause.SubType == sub || clause.SubType == "*") {
				return o, true
			}
		}
	}
	return offer{}, false
}

// acceptsGzip reports whether Accept-Encoding allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.TrimSpace(coding)
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

// cacheForever is the Cache-Control of a document asked for by its
// current hash: it never changes under that URL.
const cacheForever = "public, immutable, max-age=31536000"

// serve answers r with d in the offer Accept picks. key is the v3
// document key, for the hash check; "" elsewhere.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, d *document, offers []offer, key string) {
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	o, ok := negotiate(r.Header.Get("Accept"), offers)
	if !ok {
		http.Error(w, "none of the media types in Accept is offered", http.StatusNotAcceptable)
		return
	}
	lz := &d.json
	if o.proto {
		lz = &d.proto
	}
	rep, err := lz.get()
	if err != nil {
		// Logged once where it was built.
		http.Error(w, "the OpenAPI document cannot be built", http.StatusInternalServerError)
		return
	}
	if key != "" {
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != rep.etag {
				http.Redirect(w, r, v3URL(key, rep.etag), http.StatusMovedPermanently)
				return
			}
			h.Set("Cache-Control", cacheForever)
		}
	}
	h.Set("Content-Type", o.contentType)
	h.Set("ETag", strconv.Quote(rep.etag))
	body := rep.body
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		if z := rep.gzip(); z != nil {
			h.Set("Content-Encoding", "gzip")
			body = z
		}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

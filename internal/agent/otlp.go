package agent

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/msctl/msctl/internal/otlphttp"
)

// maxOTLPBody bounds one export request.
const maxOTLPBody = 16 << 20

// otlpMessage is a pdata export request or response: both encodings.
type otlpMessage interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

// otlpReceiver receives OTLP/HTTP exports of one signal, protobuf or JSON,
// optionally gzip-compressed, hands each decoded request to consume and
// answers in the request's encoding.
func otlpReceiver[Req, Resp otlpMessage](newReq func() Req, newResp func() Resp, consume func(Req)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		data, ok := otlphttp.ReadBody(w, r, maxOTLPBody)
		if !ok {
			return
		}
		req := newReq()
		var err error
		isJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
		if isJSON {
			err = req.UnmarshalJSON(data)
		} else {
			err = req.UnmarshalProto(data)
		}
		if err != nil {
			http.Error(w, "decode OTLP request: "+err.Error(), http.StatusBadRequest)
			return
		}
		consume(req)
		resp := newResp()
		var out []byte
		if isJSON {
			out, err = resp.MarshalJSON()
			w.Header().Set("Content-Type", "application/json")
		} else {
			out, err = resp.MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("encode response: %v", err), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(out)
	})
}

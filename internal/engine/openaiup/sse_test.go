package openaiup

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		want    []string
		wantErr error
	}{
		{"plain", "data: a\n\ndata: b\n\ndata: [DONE]\n\n", []string{"a", "b"}, nil},
		{"crlf and no space", "data:a\r\n\r\ndata: [DONE]\r\n\r\n", []string{"a"}, nil},
		{"comments and fields", ": keep-alive\n\nevent: message\nid: 3\ndata: a\n\ndata: [DONE]\n\n", []string{"a"}, nil},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\ndata: [DONE]\n\n", []string{"{\"a\":\n1}"}, nil},
		{"no final blank line", "data: a\n\ndata: [DONE]", []string{"a"}, nil},
		{"cut short", "data: a\n\n", []string{"a"}, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readEvents(strings.NewReader(tc.stream), func(d []byte) error {
				got = append(got, string(d))
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events = %q, want %q", got, tc.want)
			}
		})
	}
}

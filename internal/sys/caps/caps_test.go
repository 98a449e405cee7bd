package caps

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Cap
		err  error
	}{
		{name: "FullName", in: "CAP_NET_ADMIN", want: 12},
		{name: "WithoutPrefix", in: "NET_ADMIN", want: 12},
		{name: "LowerCase", in: "sys_admin", want: 21},
		{name: "Last", in: "CAP_CHECKPOINT_RESTORE", want: 40},
		{name: "Unknown", in: "CAP_FLY", err: ErrUnknown},
		{name: "Empty", in: "", err: ErrUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestDefault_IsDockersSet(t *testing.T) {
	want := []string{
		"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
		"CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
		"CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
	}
	if diff := cmp.Diff(want, Default.Names()); diff != "" {
		t.Errorf("Default (-want +got):\n%s", diff)
	}
}

func TestParseSet(t *testing.T) {
	t.Run("AllCoversEveryKnownCap", func(t *testing.T) {
		s, err := ParseSet([]string{"ALL"})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Has(Last()) || !s.Has(0) || s.Has(Last()+1) {
			t.Errorf("ALL = %x, last cap %d", uint64(s), Last())
		}
	})
	t.Run("UnknownNameFails", func(t *testing.T) {
		if _, err := ParseSet([]string{"CAP_CHOWN", "nope"}); !errors.Is(err, ErrUnknown) {
			t.Errorf("error = %v, want ErrUnknown", err)
		}
	})
}

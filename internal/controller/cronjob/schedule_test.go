package cronjob

import (
	"errors"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/registry/workload"
)

func TestMostRecent(t *testing.T) {
	const estimated = -1
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		schedule  string
		from, now time.Time
		loc       *time.Location
		want      time.Time // zero: none
		missed    int64     // estimated: more than walkLimit, not exact
		err       error
	}{
		{"none_due", "0 * * * *", t0, t0.Add(59 * time.Minute), time.UTC, time.Time{}, 0, nil},
		{"one_due", "0 * * * *", t0, t0.Add(61 * time.Minute), time.UTC, t0.Add(time.Hour), 1, nil},
		{"start_at_now_counts", "0 * * * *", t0, t0.Add(time.Hour), time.UTC, t0.Add(time.Hour), 1, nil},
		{"several_due", "*/10 * * * *", t0, t0.Add(65 * time.Minute), time.UTC, t0.Add(60 * time.Minute), 6, nil},
		{"every_form", "@every 90m", t0, t0.Add(5 * time.Hour), time.UTC, t0.Add(270 * time.Minute), 3, nil},
		{"weekdays_over_a_weekend", "0 9 * * MON-FRI", time.Date(2026, 2, 26, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), time.UTC, time.Date(2026, 2, 27, 9, 0, 0, 0, time.UTC), 1, nil},
		{"far_behind_jumps_exactly", "* * * * *", t0, t0.Add(30 * 24 * time.Hour).Add(30 * time.Second), time.UTC, t0.Add(30 * 24 * time.Hour), 30 * 24 * 60, nil},
		{"far_behind_irregular", "0 9 * * MON-FRI", t0, t0.Add(4 * 365 * 24 * time.Hour), time.UTC, time.Date(2030, 2, 28, 9, 0, 0, 0, time.UTC), estimated, nil},
		{"in_time_zone", "0 9 * * *", t0, t0.Add(14 * time.Hour), tokyo, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 1, nil},
		{"never_fires_twice", "0 0 31 2 *", t0, t0.Add(time.Hour), time.UTC, time.Time{}, 0, errScheduleTooDense},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := workload.ParseSchedule(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			got, missed, err := mostRecent(s, tc.from, tc.now, tc.loc)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			switch {
			case tc.want.IsZero() && got != nil:
				t.Errorf("most recent = %v, want none", got)
			case !tc.want.IsZero() && (got == nil || !got.Equal(tc.want)):
				t.Errorf("most recent = %v, want %v", got, tc.want)
			}
			if tc.missed == estimated {
				if missed <= walkLimit {
					t.Errorf("missed = %d, want more than %d", missed, walkLimit)
				}
			} else if missed != tc.missed {
				t.Errorf("missed = %d, want %d", missed, tc.missed)
			}
		})
	}
}

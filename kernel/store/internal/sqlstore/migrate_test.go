package sqlstore

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestLoadMigrationsCompatibleFrom reads the compatible-from header of
// migration files: declared in the opening comments, defaulting to the
// migration's own version, refused when out of range.
func TestLoadMigrationsCompatibleFrom(t *testing.T) {
	ok := fstest.MapFS{
		"0001_init.sql":   {Data: []byte("CREATE TABLE a (id TEXT);\n")},
		"0002_expand.sql": {Data: []byte("-- adds a column\n-- latch:compatible-from 1\nALTER TABLE a ADD COLUMN b TEXT;\n")},
		"0005_late.sql":   {Data: []byte("\n--   latch:compatible-from 2\n-- latch:compatible-from 3\nCREATE TABLE c (id TEXT);\n")},
		"0007_after.sql":  {Data: []byte("CREATE TABLE d (id TEXT);\n-- latch:compatible-from 1\n")},
	}
	ms, err := LoadMigrations(ok)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{1: 1, 2: 1, 5: 3, 7: 7}
	for _, m := range ms {
		if m.CompatibleFrom != want[m.Version] {
			t.Errorf("%s: CompatibleFrom %d, want %d", m.Name, m.CompatibleFrom, want[m.Version])
		}
	}
	for name, body := range map[string]string{
		"0003_zero.sql":   "-- latch:compatible-from 0\n",
		"0003_future.sql": "-- latch:compatible-from 4\n",
		"0003_word.sql":   "-- latch:compatible-from one\n",
	} {
		_, err := LoadMigrations(fstest.MapFS{name: {Data: []byte(body)}})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

package awssnap

import (
	"regexp"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	long := "Network." + strings.Repeat("Replica", 30)
	rdsRule := regexp.MustCompile(`^[a-z]([a-z0-9]|-[a-z0-9])*$`) // a letter first, no "--", no "-" at the end
	tests := []struct {
		name  string
		got   string
		want  string
		max   int
		valid *regexp.Regexp
	}{
		{"DBSnapshot", rdsIdentifier(request(TypeDBInstance, "Network.Db", "db"), 255),
			"stacksnap-" + snapshotID + "-network-db", 255, rdsRule},
		{"DBClusterSnapshotCut", rdsIdentifier(request(TypeDBCluster, long, "cluster"), 63),
			"stacksnap-" + snapshotID + "-network-ad595ef5", 63, rdsRule},
		{"ImageName", imageName(request(TypeInstance, "Network.Web", "i-1")),
			"stacksnap-" + snapshotID + "-Network.Web", 128, regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,}$`)},
		{"ImageNameCut", imageName(request(TypeInstance, long, "i-1")),
			"stacksnap-" + snapshotID + "-Network." + strings.Repeat("Replica", 9) + "R-60d98ec8", 128, regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,}$`)},
		{"BackupName", backupName(request(TypeTable, "Network.Orders", "Orders")),
			"stacksnap-" + snapshotID + "-Network.Orders", 255, regexp.MustCompile(`^[a-zA-Z0-9_.\-]{3,}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			if len(tt.got) > tt.max || !tt.valid.MatchString(tt.got) {
				t.Errorf("%s breaks the API's rules (at most %d of %s)", tt.got, tt.max, tt.valid)
			}
		})
	}
	t.Run("CutNamesStayApart", func(t *testing.T) {
		a := rdsIdentifier(request(TypeDBCluster, long+"A", "cluster"), 63)
		b := rdsIdentifier(request(TypeDBCluster, long+"B", "cluster"), 63)
		if a == b {
			t.Errorf("both logical ids are named %s", a)
		}
	})
}

package localaws

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestNodeModulesDir(t *testing.T) {
	tests := []struct {
		name    string
		dir     func(t *testing.T) string // working directory; "" stays in the package
		want    func(t *testing.T) string
		wantErr string
	}{
		{
			name: "OK from a package directory",
			dir:  func(*testing.T) string { return "" },
			want: func(t *testing.T) string {
				wd, err := os.Getwd()
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Join(wd, "..", "..", "node", "node_modules")
			},
		},
		{
			name: "error when the tools are not installed",
			dir: func(t *testing.T) string {
				root := t.TempDir()
				if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				sub := filepath.Join(root, "internal", "pkg")
				if err := os.MkdirAll(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				return sub
			},
			wantErr: "run `make test` or `cd node && npm ci`",
		},
		{
			name:    "error outside a module",
			dir:     func(t *testing.T) string { return t.TempDir() },
			wantErr: "no go.mod at or above the working directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want string
			if tt.want != nil {
				want = filepath.Clean(tt.want(t))
			}
			if dir := tt.dir(t); dir != "" {
				t.Chdir(dir)
			}
			got, err := NodeModulesDir()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NodeModulesDir: %v", err)
			}
			if got != want {
				t.Errorf("dir = %s, want %s", got, want)
			}
		})
	}
}

func startDynalite(t *testing.T, opts DynaliteOptions) *Dynalite {
	t.Helper()
	d, err := StartDynalite(context.Background(), opts)
	if err != nil {
		t.Fatalf("StartDynalite: %v", err)
	}
	t.Cleanup(d.Stop)
	return d
}

func TestStartDynaliteServesDynamoDB(t *testing.T) {
	d := startDynalite(t, DynaliteOptions{})
	client := DynamoDBClient(d.Endpoint)
	ctx := context.Background()
	createTable(t, client, "things")
	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String("things"),
		Item:      map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "a"}},
	})
	if err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String("things"),
		Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "a"}},
	})
	if err != nil || out.Item == nil {
		t.Fatalf("GetItem: item %v, err %v", out, err)
	}
}

func TestStartDynaliteOnGivenPort(t *testing.T) {
	port := freePort(t)
	d := startDynalite(t, DynaliteOptions{Port: port})
	if want := "http://127.0.0.1:" + strconv.Itoa(port); d.Endpoint != want {
		t.Errorf("Endpoint = %s, want %s", d.Endpoint, want)
	}
}

func TestStartDynaliteReportsStderr(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	_, err = StartDynalite(context.Background(), DynaliteOptions{Port: port})
	if err == nil || !strings.Contains(err.Error(), "EADDRINUSE") {
		t.Fatalf("err = %v, want one quoting dynalite's EADDRINUSE", err)
	}
}

func TestStartDynalitePersistsToPath(t *testing.T) {
	path := t.TempDir()
	first, err := StartDynalite(context.Background(), DynaliteOptions{Path: path})
	if err != nil {
		t.Fatalf("StartDynalite: %v", err)
	}
	createTable(t, DynamoDBClient(first.Endpoint), "kept")
	first.Stop()

	second := startDynalite(t, DynaliteOptions{Path: path})
	out, err := DynamoDBClient(second.Endpoint).ListTables(context.Background(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != "kept" {
		t.Errorf("tables after a restart = %v, want [kept]", out.TableNames)
	}
}

func TestStopEndsTheProcess(t *testing.T) {
	d := startDynalite(t, DynaliteOptions{})
	pid := d.proc.cmd.Process.Pid
	d.Stop()
	d.Stop() // a second Stop is harmless

	// The process is reaped, and its group is gone.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("signalling process group %d after Stop: %v, want ESRCH", pid, err)
	}
	_, err := DynamoDBClient(d.Endpoint).ListTables(context.Background(), &dynamodb.ListTablesInput{},
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Error("dynalite still answers after Stop")
	}
}

func createTable(t *testing.T, client *dynamodb.Client, name string) {
	t.Helper()
	_, err := client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	// Even with --createTableMs 0 a new table is CREATING for a moment.
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 10 * time.Millisecond
	})
	if err := waiter.Wait(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 10*time.Second); err != nil {
		t.Fatalf("wait for table %s: %v", name, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestLineWatch(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   bool
	}{
		{name: "OK in one write", writes: []string{"Dynalite listening at: http://127.0.0.1:4567\n"}, want: true},
		{name: "OK split across writes", writes: []string{"Dyn", "alite lis", "tening at"}, want: true},
		{name: "OK after other output", writes: []string{"warning: x\n", "more\nDynalite listening"}, want: true},
		{name: "not seen in part", writes: []string{"Dynalite", " is starting", " listening"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &lineWatch{want: []byte("Dynalite listening"), seen: make(chan struct{})}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			select {
			case <-w.seen:
				if !tt.want {
					t.Error("seen, want not seen")
				}
			default:
				if tt.want {
					t.Error("not seen, want seen")
				}
			}
		})
	}
}

// Command gen writes the DICOM fixtures and labels file under testdata/
// (see testdata/README.md). Run it from the module root:
//
//	go run ./testdata/gen
//
// The encoding lives in internal/fixturegen, which `go build ./...`,
// `go vet ./...` and `go test ./...` reach; patterns like ./... skip
// testdata folders, so this command holds nothing but the call.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/sentinel-pacs/sentinel/internal/fixturegen"
)

func main() {
	dir := flag.String("dir", "testdata", "the folder to write into")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := fixturegen.Write(ctx, *dir)
	for _, r := range res {
		if r.Skipped != "" {
			fmt.Printf("kept     %s (%s)\n", r.File, r.Skipped)
		} else {
			fmt.Printf("wrote    %s\n", r.File)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

package agent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrWorkspaceBusy means another Sentinel process holds the workspace.
var ErrWorkspaceBusy = errors.New("workspace is in use by another sentinel process")

// LockWorkspace takes the exclusive lock that lets one process at a time
// take files from a workspace's queue: the agent ('run') and 'ingest'
// hold it. dbPath is the database's path; the lock is the file beside it,
// <dbPath>.lock, so that two configurations naming the same database are
// refused too. It returns the function that releases the lock. The lock
// is the kernel's (flock), so a process that dies releases it.
func LockWorkspace(dbPath string) (release func(), err error) {
	path := dbPath + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who != "" {
				who = " (pid " + who + ")"
			}
			return nil, fmt.Errorf("%w%s: %s is locked; stop it first", ErrWorkspaceBusy, who, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

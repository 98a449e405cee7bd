package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnknownUser is returned (wrapped) when a user or group name does not
// resolve in the image's /etc/passwd or /etc/group.
var ErrUnknownUser = errors.New("unknown user or group")

// UserDB is an image's /etc/passwd and /etc/group contents. Either may be
// empty (images without them can still run as numeric users).
type UserDB struct {
	Passwd []byte
	Group  []byte
}

// User is a resolved identity.
type User struct {
	UID, GID       uint32
	Additional     []uint32
	Home, Username string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5]})
	}
	return out
}

func parseGroup(data []byte) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, groupEntry{name: f[0], gid: uint32(gid), members: members})
	}
	return out
}

// Resolve resolves "user", "user:group", "uid", "uid:gid" (the image USER
// forms) against db. A numeric user missing from /etc/passwd is fine (its
// group is then 0, or the given group); a name that does not resolve is
// ErrUnknownUser. Supplementary groups are the groups listing the user as
// a member, sorted by /etc/group order, without the primary group.
func (db UserDB) Resolve(spec string) (User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	passwd := parsePasswd(db.Passwd)
	groups := parseGroup(db.Group)
	var u User
	u.Home = "/"
	found := false
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, p := range passwd {
			if p.uid == u.UID {
				u.GID, u.Home, u.Username, found = p.gid, p.home, p.name, true
				break
			}
		}
	} else {
		for _, p := range passwd {
			if p.name == userPart {
				u.UID, u.GID, u.Home, u.Username, found = p.uid, p.gid, p.home, p.name, true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("user %q: %w (not in the image's /etc/passwd)", userPart, ErrUnknownUser)
		}
	}
	if hasGroup && groupPart != "" {
		gid, err := db.resolveGroup(groups, groupPart)
		if err != nil {
			return User{}, err
		}
		u.GID = gid
	}
	if u.Username != "" {
		for _, g := range groups {
			if g.gid == u.GID {
				continue
			}
			for _, m := range g.members {
				if m == u.Username {
					u.Additional = append(u.Additional, g.gid)
					break
				}
			}
		}
	}
	return u, nil
}

func (db UserDB) resolveGroup(groups []groupEntry, name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	for _, g := range groups {
		if g.name == name {
			return g.gid, nil
		}
	}
	return 0, fmt.Errorf("group %q: %w (not in the image's /etc/group)", name, ErrUnknownUser)
}

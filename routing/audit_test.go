package routing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// snapshotScript reads every hash, set and sorted set under a prefix in
// one step, so that the audit sees a state no script was half-way through.
var snapshotScript = redis.NewScript(`
local out = {}
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'hash' then
    out[#out + 1] = {k, 'hash', redis.call('HGETALL', k)}
  elseif t == 'set' then
    out[#out + 1] = {k, 'set', redis.call('SMEMBERS', k)}
  elseif t == 'zset' then
    out[#out + 1] = {k, 'zset', redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')}
  end
end
return out
`)

type snapshot struct {
	hashes map[string]map[string]string
	sets   map[string][]string
	zsets  map[string]map[string]float64
}

func takeSnapshot(tb testing.TB, f *fixture) snapshot {
	tb.Helper()
	v, err := snapshotScript.Run(f.ctx, f.rdb, []string{f.prefix + "timers"}, f.prefix).Slice()
	require.NoError(tb, err)
	s := snapshot{hashes: map[string]map[string]string{}, sets: map[string][]string{}, zsets: map[string]map[string]float64{}}
	for _, e := range v {
		row := e.([]any)
		key := strings.TrimPrefix(row[0].(string), f.prefix)
		items := row[2].([]any)
		switch row[1].(string) {
		case "hash":
			h := map[string]string{}
			for i := 0; i+1 < len(items); i += 2 {
				h[items[i].(string)] = items[i+1].(string)
			}
			s.hashes[key] = h
		case "set":
			for _, it := range items {
				s.sets[key] = append(s.sets[key], it.(string))
			}
		case "zset":
			z := map[string]float64{}
			for i := 0; i+1 < len(items); i += 2 {
				n, _ := strconv.ParseFloat(items[i+1].(string), 64)
				z[items[i].(string)] = n
			}
			s.zsets[key] = z
		}
	}
	return s
}

// audit checks that the whole routing state agrees with itself; it
// returns what is wrong.
func (s snapshot) audit() []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	agents, convs, queues := map[string]map[string]string{}, map[string]map[string]string{}, map[string]map[string]string{}
	for k, h := range s.hashes {
		switch {
		case strings.HasPrefix(k, "a:") && strings.Count(k, ":") == 1:
			agents[k[2:]] = h
		case strings.HasPrefix(k, "c:") && strings.Count(k, ":") == 1:
			convs[k[2:]] = h
		case strings.HasPrefix(k, "q:") && strings.Count(k, ":") == 1:
			queues[k[2:]] = h
		}
	}
	chansOf := func(q string) []string {
		if queues[q] == nil || queues[q]["chans"] == "" {
			return nil
		}
		return strings.Split(queues[q]["chans"], ",")
	}

	// Which agents each conversation is with, from the agents' side.
	with := map[string][]string{}
	for id, a := range agents {
		load := map[string]int{}
		for _, c := range s.sets["a:"+id+":convs"] {
			h := convs[c]
			if h == nil {
				fail("agent %s lists conversation %s, which does not exist", id, c)
				continue
			}
			if h["oto"] != id && !(h["state"] == "assigned" && h["agent"] == id) {
				fail("agent %s lists conversation %s, which is %s (offered to %q, held by %q)", id, c, h["state"], h["oto"], h["agent"])
			}
			load[h["ch"]]++
			with[c] = append(with[c], id)
		}
		for f, v := range a {
			ch, ok := strings.CutPrefix(f, "cap:")
			if !ok {
				continue
			}
			capn, _ := strconv.Atoi(v)
			l, _ := strconv.Atoi(a["load:"+ch])
			if l != load[ch] {
				fail("agent %s: load on %s is %d but it has %d conversations there", id, ch, l, load[ch])
			}
			if l > capn {
				fail("agent %s holds %d conversations on %s, over its capacity %d", id, l, ch, capn)
			}
			free := a["presence"] == "available" && l < capn
			for _, q := range s.sets["a:"+id+":queues"] {
				if !slices.Contains(chansOf(q), ch) {
					continue
				}
				score, in := s.zsets["q:"+q+":free:"+ch][id]
				if in != free {
					fail("agent %s: in free set of %s/%s is %v, want %v", id, q, ch, in, free)
				}
				if in && strconv.FormatFloat(score, 'f', -1, 64) != a["idle:"+ch] {
					fail("agent %s: free score %v in %s/%s, idle since %s", id, score, q, ch, a["idle:"+ch])
				}
				if _, ok := s.zsets["a:"+id+":qc:"+ch][q]; !ok {
					fail("agent %s: queue %s missing from its channel list for %s", id, q, ch)
				}
			}
		}
	}
	// Free sets hold only agents of the queue.
	for k, z := range s.zsets {
		if q, ch, ok := cutFree(k); ok {
			for a := range z {
				if !slices.Contains(s.sets["q:"+q+":agents"], a) {
					fail("free set %s/%s holds %s, not in the queue", q, ch, a)
				}
			}
		}
	}

	// Every waiting-set entry, and where each conversation waits.
	waitsIn := map[string][]string{}
	for k, z := range s.zsets {
		if parts := strings.Split(k, ":"); len(parts) == 4 && (parts[0] == "q" && parts[2] == "wait" || parts[0] == "a" && parts[2] == "pref") {
			for c := range z {
				waitsIn[c] = append(waitsIn[c], k)
			}
		}
	}
	for id, h := range convs {
		st := h["state"]
		ws := waitsIn[id]
		wantWait := ""
		switch h["where"] {
		case "q":
			q := h["q"]
			if h["xfer"] == "queue" {
				q = h["xto"]
			}
			wantWait = "q:" + q + ":wait:" + h["ch"]
		case "p":
			wantWait = "a:" + h["pref"] + ":pref:" + h["ch"]
		}
		if wantWait == "" && len(ws) > 0 || wantWait != "" && (len(ws) != 1 || ws[0] != wantWait) {
			fail("conversation %s (%s, where %q) is in waiting sets %v, want %q", id, st, h["where"], ws, wantWait)
		}
		holders := with[id]
		switch st {
		case "waiting":
			if h["where"] == "" || h["oto"] != "" || h["agent"] != "" || len(holders) != 0 {
				fail("waiting conversation %s: where %q, offered to %q, agent %q, with %v", id, h["where"], h["oto"], h["agent"], holders)
			}
		case "offered":
			if h["oto"] == "" || h["where"] != "" || !slices.Equal(holders, []string{h["oto"]}) {
				fail("offered conversation %s: offered to %q, where %q, with %v", id, h["oto"], h["where"], holders)
			}
			if _, ok := s.zsets["timers"]["o|"+id+"|"+h["oid"]]; !ok {
				fail("offered conversation %s has no offer timer", id)
			}
		case "assigned":
			want := []string{h["agent"]}
			switch h["xfer"] {
			case "":
				if h["oto"] != "" || h["where"] != "" {
					fail("held conversation %s: offered to %q, where %q", id, h["oto"], h["where"])
				}
			case "agent":
				if h["oto"] != h["xto"] || h["where"] != "" {
					fail("conversation %s in transfer to %s: offered to %q, where %q", id, h["xto"], h["oto"], h["where"])
				}
				want = append(want, h["oto"])
			case "queue":
				if (h["oto"] == "") == (h["where"] == "") {
					fail("conversation %s in transfer to queue %s: offered to %q, where %q", id, h["xto"], h["oto"], h["where"])
				}
				if h["oto"] != "" {
					want = append(want, h["oto"])
				}
			default:
				fail("conversation %s: transfer kind %q", id, h["xfer"])
			}
			if h["oto"] != "" {
				if _, ok := s.zsets["timers"]["o|"+id+"|"+h["oid"]]; !ok {
					fail("conversation %s: transfer offer has no timer", id)
				}
			}
			slices.Sort(want)
			got := slices.Clone(holders)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				fail("held conversation %s is with %v, want %v", id, got, want)
			}
		case "ended", "cancelled", "timed_out":
			if len(holders) != 0 || h["oto"] != "" {
				fail("finished conversation %s (%s) still with %v, offered to %q", id, st, holders, h["oto"])
			}
		default:
			fail("conversation %s in unknown state %q", id, st)
		}
	}
	for c, ags := range with {
		if convs[c] == nil {
			fail("agents %v list conversation %s, which does not exist", ags, c)
		}
	}
	slices.Sort(bad)
	return bad
}

func cutFree(k string) (queue, ch string, ok bool) {
	rest, ok := strings.CutPrefix(k, "q:")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || parts[1] != "free" {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// audit fails the test when the routing state does not agree with itself.
func audit(tb testing.TB, f *fixture) {
	tb.Helper()
	if bad := takeSnapshot(tb, f).audit(); len(bad) > 0 {
		tb.Errorf("routing state is inconsistent:\n%s", strings.Join(bad, "\n"))
	}
}

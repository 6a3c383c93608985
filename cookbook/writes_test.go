package cookbook_test

import (
	"fmt"
	"os"
	"time"

	"github.com/ehgate/ehgate/connector"
)

// Chapter 5: a tarification delivered live, two queued while every site is down, and the
// outbox replayed when the platform returns: the platform records each write once.
func Example_writesDuringAnOutage() {
	p := platform()
	dir := tempDir()
	defer os.RemoveAll(dir)
	client, err := connector.New(pharmacyConfig(dir))
	must(err)
	defer client.Close()
	events, stop := client.Subscribe(256)
	defer stop()

	patient := insured(4).SSIN
	r, err := client.Submit(bg, connector.Write{IdempotencyKey: "cookbook-ch5-1", Partition: patient, Payload: []byte("tarification 1")})
	must(err)
	fmt.Println("1. delivered:", r.Delivered, "queued:", r.Queued)

	restore := allSitesDown()
	defer restore()
	for _, key := range []string{"cookbook-ch5-2", "cookbook-ch5-3"} {
		r, err := client.Submit(bg, connector.Write{IdempotencyKey: key, Partition: patient, Payload: []byte("tarification")})
		must(err) // the counter is never refused: the write is durable in the outbox
		fmt.Println("2. delivered:", r.Delivered, "queued:", r.Queued, "key:", r.Key)
	}
	fmt.Println("   pending:", client.Status().Outbox.Pending)

	restore()
	done := waitFor(events, 30*time.Second, func(ev connector.Event) bool {
		return ev.Kind == connector.EventReplay && ev.Replay.Done && ev.Replay.Pending == 0 && ev.Replay.Delivered > 0
	})
	fmt.Println("3. replayed:", done, "pending:", client.Status().Outbox.Pending)

	recorded := map[string]int{}
	for _, w := range p.Writes() {
		recorded[w.Key]++
	}
	fmt.Println("   recorded once each:", recorded["cookbook-ch5-1"], recorded["cookbook-ch5-2"], recorded["cookbook-ch5-3"])

	// Output:
	// 1. delivered: true queued: false
	// 2. delivered: false queued: true key: cookbook-ch5-2
	// 2. delivered: false queued: true key: cookbook-ch5-3
	//    pending: 2
	// 3. replayed: true pending: 0
	//    recorded once each: 1 1 1
}

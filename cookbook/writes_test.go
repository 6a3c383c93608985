package cookbook_test

import (
	"fmt"
	"os"
	"time"

	"github.com/ehgate/ehgate/connector"
)

// Chapter 5: an eHealthBox message delivered live, two queued while every site is down, and
// the outbox replayed when the platform returns: the platform records each message once.
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
	message := func(id string) connector.EHealthBoxMessage {
		return connector.EHealthBoxMessage{
			PublicationID: id, Partition: patient, Title: "Dispensation notice",
			Recipients: []connector.EHealthBoxAddress{{ID: "10082533004", Type: "NIHII", Quality: "DOCTOR"}},
			Content:    []byte("sealed for the prescriber"), Encrypted: true, // ehgate does not seal
		}
	}
	r, err := client.SendMessage(bg, message("COOKBOOK00001"))
	must(err)
	fmt.Println("1. delivered:", r.Delivered, "queued:", r.Queued)

	restore := allSitesDown()
	defer restore()
	for _, key := range []string{"COOKBOOK00002", "COOKBOOK00003"} {
		r, err := client.SendMessage(bg, message(key))
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
	fmt.Println("   recorded once each:", recorded["COOKBOOK00001"], recorded["COOKBOOK00002"], recorded["COOKBOOK00003"])

	// Output:
	// 1. delivered: true queued: false
	// 2. delivered: false queued: true key: COOKBOOK00002
	// 2. delivered: false queued: true key: COOKBOOK00003
	//    pending: 2
	// 3. replayed: true pending: 0
	//    recorded once each: 1 1 1
}

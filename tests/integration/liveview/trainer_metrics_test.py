"""sy-trainer's /metrics on a real standalone run: scraped over HTTP while it trains,
the series are there with sane values (loss, throughput, dropped fractions per Switch
layer, expert tokens adding up to the tokens trained, the step-time histogram)."""
import math
import os
import shutil
import tempfile
import unittest

import live_processes as lp


class TrainerMetricsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-trainer-metrics-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.corpus = os.path.join(self.dir, "corpus.txt")
        lp.write_corpus(self.corpus)

    def test_a_standalone_run_exports_its_series_while_it_trains(self):
        err = os.path.join(self.dir, "trainer.err")
        # Far more steps than the test waits for: it is stopped once scraped.
        trainer = lp.start([os.path.join(lp.BIN_DIR, "sy-trainer"), "--standalone", "--data=" + self.corpus,
                            "--steps=1000000", "--metrics_port=0", "--metrics_address=127.0.0.1"] + lp.TINY, err)
        self.addCleanup(lp.stop, trainer)
        port = lp.wait_for("the /metrics port", lambda: lp.metrics_ports(lp.read(err)), trainer)[0]

        def trained_steps():
            samples, _ = lp.scrape(port)
            step = samples.get(("sy_trainer_step", frozenset()), 0)
            return (samples, step) if step >= 3 else None

        samples, step = lp.wait_for("3 recorded steps", trained_steps, trainer)
        self.assertIsNone(trainer.poll(), "scraped while it trains")
        _, types = lp.scrape(port)

        def value(name, **labels):
            key = (name, frozenset(labels.items()))
            self.assertIn(key, samples, "%s%s missing" % (name, labels))
            return samples[key]

        self.assertEqual(types["sy_trainer_loss"], "gauge")
        self.assertEqual(types["sy_trainer_expert_tokens_total"], "counter")
        self.assertEqual(types["sy_trainer_step_seconds"], "histogram")
        loss = value("sy_trainer_loss")
        self.assertTrue(0 < loss < 10 and math.isfinite(loss), loss)
        self.assertGreater(value("sy_trainer_tokens_per_second"), 0)
        self.assertTrue(0 <= value("sy_trainer_dropped_fraction") <= 1)
        for layer in range(lp.SWITCH_LAYERS):
            self.assertTrue(0 <= value("sy_trainer_dropped_fraction", switch_layer=str(layer)) <= 1)
            routed = sum(value("sy_trainer_expert_tokens_total", switch_layer=str(layer), expert=str(e))
                         for e in range(lp.EXPERTS))
            # Every token of every recorded step is routed once (a scrape may catch the next step's counts).
            self.assertGreaterEqual(routed, step * lp.TOKENS_PER_STEP)
            self.assertLessEqual(routed, (step + 1) * lp.TOKENS_PER_STEP)
        self.assertEqual(value("sy_trainer_wire_bytes_total"), 0, "a standalone run sends nothing")

        count = value("sy_trainer_step_seconds_count")
        self.assertGreaterEqual(count, step)
        self.assertGreater(value("sy_trainer_step_seconds_sum"), 0)
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in samples.items()
                         if name == "sy_trainer_step_seconds_bucket")
        self.assertEqual(buckets[-1], (math.inf, count))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets), "cumulative buckets")

    def test_a_bad_metrics_port_exits_2_before_training(self):
        err = os.path.join(self.dir, "trainer.err")
        trainer = lp.start([os.path.join(lp.BIN_DIR, "sy-trainer"), "--standalone", "--data=" + self.corpus,
                            "--steps=5", "--metrics_port=70000"] + lp.TINY, err)
        self.assertEqual(trainer.wait(timeout=lp.DEADLINE_S), 2)
        self.assertIn("metrics_port", lp.read(err))


if __name__ == "__main__":
    unittest.main()

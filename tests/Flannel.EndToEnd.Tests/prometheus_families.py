#!/usr/bin/env python3
"""Parses a Prometheus text exposition with the Prometheus project's own Python parser
(Debian python3-prometheus-client, prometheus_client.parser.text_string_to_metric_families) from the file named by
the first argument, and prints one line per sample: "<family> <type> <sample name> <value> <labels as JSON>".
A parse error exits non-zero."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as source:
    text = source.read()
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        print(family.name, family.type, sample.name, repr(float(sample.value)), json.dumps(sample.labels, sort_keys=True, separators=(",", ":")))

"""``python -m bench.chaos``: the chaos benchmark; see ``bench/chaos/__init__.py``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bench.chaos import __doc__ as DOC
from bench.chaos.poison import EXPECTED
from bench.chaos.run import ChaosPlan, ChaosReport, run_chaos


def print_report(report: ChaosReport) -> None:
    plan = report.plan
    print(
        f"\nchaos run: {report.expected} articles on {plan.hosts} hosts, {len(report.poison)} poison records, "
        f"{plan.fetch_workers} fetch workers, {os.cpu_count()} cores (shared: figures are noisy); "
        f"wall {report.wall_s:.0f} s, ended: {report.finished}"
    )
    if report.finished == "deadline":
        print(
            f"NOTE: the run hit its deadline with records still being published (the last new article reached "
            f"SQLite at {report.last_arrival_s:.0f} s): 'lost' counts articles in no sink by then"
        )
    print("\nevents")
    for event in report.events:
        print(f"  {event.started_s:6.1f}s - {event.ended_s:6.1f}s  {event.name:26} {event.detail}")

    print(f"\n{'articles':40} {'arrived':>8} {'lost':>6} {'doubled':>8}   (expected {report.expected})")
    for sink in report.sinks:
        print(f"  {sink.sink:38} {sink.arrived:8} {sink.lost:6} {sink.doubled:8}")
    print(f"  raw topic: {report.raw_repeats} repeated article records; duplicates topic: {report.duplicates_topic}")
    missing = ", ".join(f"{s} {n}" for s, n in report.behind_failure_missing.items())
    print(f"  behind a transient failure: {report.behind_failure} articles; missing from {missing}")

    print(f"\n{'poison':24} {'expected':42} {'n':>3} {'ok':>3}  dead letters published/distinct, where, notes")
    kinds: dict[str, list] = {}
    for outcome in report.poison:
        kinds.setdefault(outcome.poison.kind.value, []).append(outcome)
    for kind, outcomes in kinds.items():
        published = sum(o.dead_letters_published for o in outcomes)
        distinct = sum(o.dead_letters_distinct for o in outcomes)
        notes = sorted({o.note for o in outcomes if o.note})
        places = sorted({",".join(o.in_sinks) or "no sink" for o in outcomes})
        expected = EXPECTED[outcomes[0].poison.kind].value
        ok = sum(o.ok for o in outcomes)
        print(
            f"  {kind:22} {expected:42} {len(outcomes):3} {ok:3}  {published}/{distinct}; "
            f"{' | '.join(places)}{'; ' + '; '.join(notes) if notes else ''}"
        )

    print(f"\n{'dead letters by stage/type':40} {'published':>9} {'distinct by id':>15}")
    for row in report.dead_letters:
        print(f"  {row.stage + '/' + row.error_type:38} {row.published:9} {row.distinct:15}")
    print(f"  of them for publisher article pages (articles dead-lettered, not retried): {report.article_dead_letters}")
    if report.undecodable_dead_letters:
        print(f"  undecodable records on the dead-letter topic: {report.undecodable_dead_letters}")

    print(
        f"\n{'host':12} {'page reqs':>9} {'pages':>6} {'failures':>8} {'retries':>7} "
        f"{'429 R-A':>7} {'honoured':>8} {'early':>5} {'never':>5}"
    )
    for host in report.hosts:
        print(
            f"  {host.host:10} {host.page_requests:9} {host.pages_requested:6} {host.failures_served:8} "
            f"{host.retries:7} {host.retry_after_given:7} {host.retry_after_honoured:8} "
            f"{host.retry_after_early:5} {host.retry_after_never_retried:5}"
        )

    print(
        f"\nlongest stall of progress (no new article in SQLite): {report.longest_stall_s:.0f} s "
        f"(from {report.longest_stall_at_s[0]:.0f} s to {report.longest_stall_at_s[1]:.0f} s)"
    )
    print(f"service processes that exited on their own: {len(report.exits)}")
    for exit in report.exits[:10]:
        tail = exit.log_tail.splitlines()[-1][:200] if exit.log_tail else ""
        print(f"  {exit.at_s:6.1f}s {exit.service} exit code {exit.code}: {tail}")
    if len(report.exits) > 10:
        print(f"  ... and {len(report.exits) - 10} more")
    print(f"fetch worker processes of `newswire ingest` at the end: {report.fetch_workers_at_end}/{plan.fetch_workers}")
    if report.slow_stops:
        print(f"did not stop within 30 s of SIGTERM: {', '.join(report.slow_stops)}")
    print("WARNING/ERROR log lines: " + ", ".join(f"{n} {c.total()}" for n, c in report.problem_lines.items()))
    for name, lines in report.problem_lines.items():
        for gist, count in lines.most_common(4):
            print(f"  {name:8} {count:5}  {gist}")
    for problem in report.problems:
        print(f"problem: {problem}")

    print(f"\n{'target':56} {'measured':>22}  result")
    for target, measured, met in report.targets():
        print(f"  {target:54} {measured:>22}  {'PASS' if met else 'FAIL'}")
    print(f"\nchaos: {'PASS' if report.passed else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ChaosPlan()
    parser.add_argument("--articles", type=int, default=default.articles)
    parser.add_argument("--hosts", type=int, default=default.hosts)
    parser.add_argument("--fetch-workers", type=int, default=default.fetch_workers)
    parser.add_argument("--pipeline-kills", type=int, default=default.pipeline_kills, choices=range(0, 4))
    parser.add_argument("--fetch-worker-kills", type=int, default=default.fetch_worker_kills, choices=range(0, 2))
    parser.add_argument("--no-outages", action="store_true", help="no broker, PostgreSQL or host outage")
    parser.add_argument("--deadline", type=float, default=default.deadline_s, help="seconds the whole run may take")
    parser.add_argument("--settle", type=float, default=default.settle_s, help="seconds of no progress that end a run")
    parser.add_argument("--keep-logs", type=Path, help="copy the services' logs here")
    args = parser.parse_args()
    # The benchmark's own Kafka clients narrate every reconnect while it stops the broker on purpose.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    outages = 0.0 if args.no_outages else None
    plan = ChaosPlan(
        articles=args.articles,
        hosts=args.hosts,
        fetch_workers=args.fetch_workers,
        pipeline_kills=args.pipeline_kills,
        fetch_worker_kills=args.fetch_worker_kills,
        broker_outage_s=default.broker_outage_s if outages is None else outages,
        postgres_outage_s=default.postgres_outage_s if outages is None else outages,
        host_outage_s=default.host_outage_s if outages is None else outages,
        deadline_s=args.deadline,
        settle_s=args.settle,
    )
    report = run_chaos(plan, progress=lambda line: print(line, flush=True), keep=args.keep_logs)
    print_report(report)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())

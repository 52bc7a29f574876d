#!/usr/bin/env bash
# Fetches Apache Beam's portable job server (Flink or Spark) from Maven Central into a cache folder, once,
# and prints the path of the jar to pass to beam_bottlenecks.py:
#
#   python beam_bottlenecks.py ... --runner=FlinkRunner --flink_master=[local] --environment_type=LOOPBACK \
#     --flink_job_server_jar="$(tools/fetch_job_server.sh flink)"
#   python beam_bottlenecks.py ... --runner=SparkRunner --spark_master_url='local[*]' --environment_type=LOOPBACK \
#     --spark_job_server_jar="$(tools/fetch_job_server.sh spark)"
#
# Usage: tools/fetch_job_server.sh flink|spark [official]
#   flink, spark  the job server assembled by Maven from the Beam runner named in tools/job_server/pom.xml
#                 and its dependencies: DIR/job-server.jar with DIR/lib/; it stops by itself when the
#                 process that started it is gone.
#   official      Beam's own shaded jar instead, of the Beam release in requirements-beam.txt (mvn
#                 dependency:copy of org.apache.beam:beam-runners-flink-1.19-job-server:VERSION, or
#                 beam-runners-spark-3-job-server); needs full access to Maven Central.
#
# The cache folder is $RETRAIN_JOB_SERVER_DIR, by default ~/.cache/retrain/beam-job-server (Maven's own
# downloads go to ~/.m2 as usual). A cached job server is reused without running Maven; an assembled one's
# folder name carries a digest of tools/job_server/, so that a changed recipe is never served from an old
# build. Needs Java 11+ (17 tested) and Maven 3.6+. Progress goes to stderr; stdout is the jar's path alone.
set -euo pipefail

flink_version=1.19
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
recipe_dir="$repo_dir/tools/job_server"
cache_dir="${RETRAIN_JOB_SERVER_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/retrain/beam-job-server}"

fail() {
  echo "ERROR: $*" >&2
  exit 1
}

# Beam's Python SDK (requirements-beam.txt) and the runner the assembled job server is built from (pom.xml).
beam_version="$(sed -n 's/^apache-beam==\([0-9][0-9.]*\).*/\1/p' "$repo_dir/requirements-beam.txt")"
runner_version="$(sed -n 's:^ *<beam.version>\(.*\)</beam.version>.*:\1:p' "$recipe_dir/pom.xml")"
[ -n "$beam_version" ] || fail "requirements-beam.txt has no apache-beam==VERSION line."
[ -n "$runner_version" ] || fail "tools/job_server/pom.xml has no <beam.version>."
recipe_digest="$(cd "$recipe_dir" && find pom.xml src -type f | LC_ALL=C sort | xargs cat | cksum | cut -d' ' -f1)"

runner="${1:-}"
kind="${2:-assembled}"
case "$runner" in
  flink) artifact="beam-runners-flink-${flink_version}-job-server"; name="flink-${flink_version}-job-server" ;;
  spark) artifact="beam-runners-spark-3-job-server"; name="spark-3-job-server" ;;
  *) fail "Usage: tools/fetch_job_server.sh flink|spark [official]" ;;
esac
name="$name-$runner_version-$recipe_digest"
case "$kind" in
  assembled|official) ;;
  *) fail "Unknown choice '$kind': the second argument can only be 'official' (Beam's own shaded jar)." ;;
esac

if [ "$kind" = official ]; then
  jar="$cache_dir/$artifact-$beam_version.jar"
else
  jar="$cache_dir/$name/job-server.jar"
fi
if [ -f "$jar" ] && { [ "$kind" = official ] || [ -f "$cache_dir/$name/.complete" ]; }; then
  echo "$jar"
  exit 0
fi

command -v java >/dev/null 2>&1 || fail "Java is needed for Beam's job server (Java 11 or newer; apt-get install openjdk-17-jre-headless)."
command -v mvn >/dev/null 2>&1 || fail "Maven is needed to fetch Beam's job server (apt-get install maven)."
mkdir -p "$cache_dir" || fail "Cannot create the cache folder $cache_dir (set RETRAIN_JOB_SERVER_DIR)."

# One fetch at a time per cache folder (parallel test runs, two terminals); the second reuses the first's.
exec 9>"$cache_dir/.lock-$name-$kind"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [ -f "$jar" ] && { [ "$kind" = official ] || [ -f "$cache_dir/$name/.complete" ]; }; then
  echo "$jar"
  exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/fetch_job_server.XXXXXX")"
trap 'rm -f "$log"' EXIT
if [ "$kind" = official ]; then
  echo "Fetching org.apache.beam:$artifact:$beam_version with Maven into $cache_dir ..." >&2
  if ! mvn -B -q dependency:copy -Dartifact="org.apache.beam:$artifact:$beam_version:jar" \
      -DoutputDirectory="$cache_dir" >"$log" 2>&1; then
    fail "Maven could not fetch org.apache.beam:$artifact:$beam_version ($(grep -m1 -o 'not found in [^ ]*\|Could not transfer [^ ]*\|Unable to find artifact' "$log" | head -1)); 'tools/fetch_job_server.sh $runner' assembles the job server from Beam's runner instead."
  fi
  echo "$jar"
  exit 0
fi

# Built in a temporary folder and renamed into place: an interrupted fetch never leaves half a job server.
partial="$cache_dir/$name.partial-$$"
rm -rf "$partial"
echo "Assembling Beam $runner_version's $runner job server with Maven into $cache_dir/$name (first time only; about" \
  "$([ "$runner" = flink ] && echo 160 || echo 310) MB) ..." >&2
if ! mvn -B -q -f "$recipe_dir/pom.xml" -P "$runner" -Djob.server.dir="$partial" \
    resources:resources compiler:compile jar:jar dependency:copy-dependencies >"$log" 2>&1; then
  rm -rf "$partial"
  fail "Maven could not assemble the $runner job server: $(grep -m1 '^\[ERROR\]' "$log" | cut -c9-300)"
fi
rm -rf "$partial/build"
touch "$partial/.complete"
rm -rf "${cache_dir:?}/$name"
mv "$partial" "$cache_dir/$name"
echo "$jar"

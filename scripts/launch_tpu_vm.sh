#!/usr/bin/env bash
# An operations tool (drives gcloud), not library code: the trainer is `python -m asf_jax.main`.
# Train asf_jax on every worker of an existing Cloud TPU VM (a single host or a pod slice).
#
# The same `python -m asf_jax.main ... --distributed` command runs on all workers at once
# (`gcloud compute tpus tpu-vm ssh --worker=all`); jax.distributed.initialize() finds the other
# workers by itself, the mesh spans every chip of the slice, and config.train.global_batch_size is
# the batch over all of them (each worker reads its share; BatchNorm sees the global batch).
# This script creates and deletes nothing: make the TPU VM first, e.g.
#
#   gcloud compute tpus tpu-vm create my-tpu --zone us-central2-b --project my-project \
#       --accelerator-type v4-32 --version tpu-ubuntu2204-base
#
# Data and workdir: every worker must read the same built TFDS directory (--data_dir) and write
# the same workdir (--workdir). Use gs:// paths if your TFDS/orbax set-up reads them, a GCS bucket
# mounted at the same path on every worker with gcsfuse, or copy the data to the same local path
# on each worker (the workdir must still be shared: checkpoints are written by all processes).
#
# Examples:
#   scripts/launch_tpu_vm.sh --tpu my-tpu --zone us-central2-b --project my-project \
#       --setup --repo https://github.com/you/asf_jax.git
#   scripts/launch_tpu_vm.sh --tpu my-tpu --zone us-central2-b --project my-project \
#       --config configs/slowfast.py --data_dir /mnt/gcs/tfds --workdir /mnt/gcs/runs/slowfast1 \
#       -- --config.train.global_batch_size=256
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/launch_tpu_vm.sh --tpu NAME --zone ZONE [--project PROJECT] [options] [-- OVERRIDES...]

Runs `python -m asf_jax.main --distributed` on all workers of an existing TPU VM. Creates nothing.

Required:
  --tpu NAME           TPU VM name (gcloud compute tpus tpu-vm list).
  --zone ZONE          Its zone, e.g. us-central2-b.

Training (not needed with --setup alone):
  --workdir PATH       Checkpoints, TensorBoard and evaluation, shared by all workers
                       (a gcsfuse mount or another shared path; rerunning resumes).
  --config FILE        Config file in the repository (default: configs/slowfast.py).
  --data_dir PATH      Built TFDS directory readable by every worker (sets config.data.data_dir;
                       default: the config's value).
  -- OVERRIDES...      Everything after `--` is passed on, e.g. --config.train.num_epochs=30.

Options:
  --project PROJECT    Google Cloud project (default: gcloud's configured project).
  --remote_dir DIR     Checkout on each worker (default: asf_jax, relative to the home directory).
  --setup              Install asf_jax on every worker first: clone --repo (or copy this tree with
                       --copy) into --remote_dir and `pip install -e . jax[tpu]`, then stop
                       unless --workdir is given too.
  --repo URL           Git URL to clone for --setup (a pull if --remote_dir already exists).
  --branch NAME        Branch or tag to check out with --repo (default: the remote's default).
  --copy               With --setup: copy this working tree (scp) instead of cloning.
  --python BIN         Python on the workers (default: python3).
  --background         Detach the training with nohup (it survives the ssh session); each
                       worker logs to ~/asf_jax_train.log.
  --dry_run            Print the gcloud commands instead of running them.
  -h, --help           This text.
EOF
}

die() {
  echo "launch_tpu_vm.sh: $*" >&2
  echo "Run with --help for usage." >&2
  exit 2
}

tpu="" zone="" project="" workdir="" config="configs/slowfast.py" data_dir=""
remote_dir="asf_jax" setup=0 repo="" branch="" copy=0 python="python3" dry_run=0 background=0
overrides=()

while (($#)); do
  case "$1" in
    --tpu) tpu="${2:?--tpu needs a value}"; shift 2 ;;
    --zone) zone="${2:?--zone needs a value}"; shift 2 ;;
    --project) project="${2:?--project needs a value}"; shift 2 ;;
    --workdir) workdir="${2:?--workdir needs a value}"; shift 2 ;;
    --config) config="${2:?--config needs a value}"; shift 2 ;;
    --data_dir) data_dir="${2:?--data_dir needs a value}"; shift 2 ;;
    --remote_dir) remote_dir="${2:?--remote_dir needs a value}"; shift 2 ;;
    --repo) repo="${2:?--repo needs a value}"; shift 2 ;;
    --branch) branch="${2:?--branch needs a value}"; shift 2 ;;
    --python) python="${2:?--python needs a value}"; shift 2 ;;
    --setup) setup=1; shift ;;
    --copy) copy=1; shift ;;
    --dry_run) dry_run=1; shift ;;
    --background) background=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; overrides=("$@"); break ;;
    *) die "unknown argument: $1" ;;
  esac
done

[[ -n "$tpu" ]] || die "--tpu is required"
[[ -n "$zone" ]] || die "--zone is required"
((setup)) || [[ -n "$workdir" ]] || die "--workdir is required (or --setup to install only)"
if ((setup)) && ! ((copy)) && [[ -z "$repo" ]]; then
  die "--setup needs --repo URL or --copy"
fi

gcloud_args=(compute tpus tpu-vm)
location_args=(--zone "$zone")
[[ -n "$project" ]] && location_args+=(--project "$project")

# Runs a gcloud command, or prints it (quoted for copy-paste) with --dry_run.
run() {
  if ((dry_run)); then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}

# Runs one shell command on every worker at once.
on_all_workers() {
  run gcloud "${gcloud_args[@]}" ssh "$tpu" "${location_args[@]}" --worker=all --command "$1"
}

# ---- Set-up: the same code on every worker.
if ((setup)); then
  q_dir=$(printf '%q' "$remote_dir")
  if ((copy)); then
    repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    tarball="$(mktemp -t asf_jax.XXXXXX.tar.gz)"
    trap 'rm -f "$tarball"' EXIT
    tar -C "$repo_root" --exclude=.git --exclude=.venv --exclude='*.pyc' -czf "$tarball" .
    run gcloud "${gcloud_args[@]}" scp "$tarball" "$tpu:asf_jax.tar.gz" "${location_args[@]}" \
      --worker=all
    fetch="mkdir -p $q_dir && tar -C $q_dir -xzf asf_jax.tar.gz && rm asf_jax.tar.gz"
  else
    q_repo=$(printf '%q' "$repo")
    checkout=""
    [[ -n "$branch" ]] && checkout=" && git -C $q_dir checkout $(printf '%q' "$branch")"
    fetch="if [ -d $q_dir/.git ]; then git -C $q_dir pull --ff-only;"
    fetch+=" else git clone $q_repo $q_dir; fi$checkout"
  fi
  # jax[tpu] adds libtpu for the jax version that asf_jax pins.
  on_all_workers "set -e; $fetch; cd $q_dir && $python -m pip install -q -e . 'jax[tpu]'"
  [[ -n "$workdir" ]] || exit 0
fi

# ---- Training: one command, identical on all workers.
train=("$python" -m asf_jax.main --config "$config" --workdir "$workdir" --distributed)
[[ -n "$data_dir" ]] && train+=("--config.data.data_dir=$data_dir")
train+=("${overrides[@]}")
command="$(printf '%q ' "${train[@]}")"
((background)) && command="nohup $command > ~/asf_jax_train.log 2>&1 < /dev/null &"
on_all_workers "cd $(printf '%q' "$remote_dir") && $command"

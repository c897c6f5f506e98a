#!/usr/bin/env bash
# Issue 11: does MVP-LAM's advantage appear where the paper says it comes from, exogenous noise?
#
#   1. record WidowX simulator data (4 tasks, cameras third_person,side,wrist at 64x64, camera poses randomised
#      per episode) once per noise CONDITION, with the same episode seeds (same placements and camera poses;
#      only the noise differs), plus two out-of-distribution sets: camera poses outside the training range
#      (`--camera-ood`) and noise levels not seen in training (NOISE_OOD);
#   2. for every condition x view set x objective x training seed: train a LAM (same architecture, data, steps,
#      batch), evaluate it on its condition's held-out episodes (`eval-lam --split heldout`, EVAL_SEEDS
#      evaluation seeds, probes split by episode, near-constant action dims excluded) and on both OOD sets;
#   3. tables with 95 % confidence intervals over training seeds, and the paired MVP - single differences:
#      $OUT/results.md, $OUT/results.json.
#
# Usage (from the repository root):
#   benchmarks/lam_experiment.sh                                   # the full study (see docs/lam_experiment.md)
#   CONDITIONS=both VIEWSETS=third_person,side OBJECTIVES=mvp TRAIN_SEEDS=0 OUT=outputs/lam_smoke \
#       benchmarks/lam_experiment.sh                               # one cell (the smoke test)
# Resumable: datasets holding EPISODES episodes are reused; a training run continues its checkpoint
# (`train-lam --resume`); an evaluation whose eval.json exists is skipped. Re-run the same command after a stop.
#
# Environment knobs [defaults]:
#   OUT [outputs/lam_experiment]  EPISODES per task and condition [12]  OOD_EPISODES per task [4]
#   TASKS [carrot_on_plate stack_cube spoon_on_towel eggplant_in_basket]
#   CONDITIONS [none camera distractors both]   (noise of each: NOISE_none, NOISE_camera, NOISE_distractors, NOISE_both)
#   NOISE_none [none]  NOISE_camera [camera_motion=1]  NOISE_distractors [distractors=3]
#   NOISE_both [camera_motion=1,distractors=3]  NOISE_OOD [camera_motion=2,distractors=4,distractor_speed=2]
#   VIEWSETS ["third_person,side third_person,side,wrist"]  OBJECTIVES [single mvp mvp+ac]  TRAIN_SEEDS [0 1 2]
#   IMAGE [64]  STEPS [300]  BATCH [16]  GAP [0.6s]  HOLDOUT [0.25]  USAGE_DECAY [0.9]
#   FEATURE [patch]: what every LAM encodes and reconstructs (`train-lam --feature-source`: patch = pixels,
#     effnet = the frozen ImageNet EfficientNet-Lite0 trunk's cells); give each feature source its own OUT
#   EVAL_SEEDS [5]  MI_STEPS [200] (BA / MINE on the held-out set)  OOD_MI_STEPS [0] (OOD sets: KSG, probes, views)
#   OOD_SEEDS training seeds whose models are also evaluated on the OOD sets [$TRAIN_SEEDS; "" for none]
#   JOBS parallel lanes [2]  THREADS torch threads per run [1]  NICE [5]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-outputs/lam_experiment}
EPISODES=${EPISODES:-12}
OOD_EPISODES=${OOD_EPISODES:-4}
TASKS=${TASKS:-carrot_on_plate stack_cube spoon_on_towel eggplant_in_basket}
CONDITIONS=${CONDITIONS:-none camera distractors both}
NOISE_none=${NOISE_none:-none}
NOISE_camera=${NOISE_camera:-camera_motion=1}
NOISE_distractors=${NOISE_distractors:-distractors=3}
NOISE_both=${NOISE_both:-camera_motion=1,distractors=3}
NOISE_OOD=${NOISE_OOD:-camera_motion=2,distractors=4,distractor_speed=2}
VIEWSETS=${VIEWSETS:-third_person,side third_person,side,wrist}
OBJECTIVES=${OBJECTIVES:-single mvp mvp+ac}
TRAIN_SEEDS=${TRAIN_SEEDS:-0 1 2}
IMAGE=${IMAGE:-64}
FEATURE=${FEATURE:-patch}
STEPS=${STEPS:-300}
BATCH=${BATCH:-16}
GAP=${GAP:-0.6s}
HOLDOUT=${HOLDOUT:-0.25}
USAGE_DECAY=${USAGE_DECAY:-0.9}
EVAL_SEEDS=${EVAL_SEEDS:-5}
MI_STEPS=${MI_STEPS:-200}
OOD_MI_STEPS=${OOD_MI_STEPS:-0}
OOD_SEEDS=${OOD_SEEDS-$TRAIN_SEEDS}  # set but empty: no OOD evaluations
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
NICE=${NICE:-5}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" MUJOCO_GL=${MUJOCO_GL:-egl} HF_HUB_OFFLINE=1 \
       OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
LAM="nice -n $NICE $ROOT/.venv/bin/lam-ros"
PY="$ROOT/.venv/bin/python"
mkdir -p "$OUT/data" "$OUT/logs" "$OUT/runs"
T0=$(date +%s)
stamp() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/logs/timeline.txt"; }
stamp "start: conditions [$CONDITIONS] viewsets [$VIEWSETS] objectives [$OBJECTIVES] seeds [$TRAIN_SEEDS] steps $STEPS, features $FEATURE"

# Run the function $1 on the remaining arguments in $JOBS parallel lanes (each lane sequential); fail if any fails.
in_lanes() {
  local fn=$1 i=0 rc=0 pids=() lanes=(); shift
  for x in "$@"; do lanes[$((i % JOBS))]+="$x "; i=$((i + 1)); done
  for l in "${lanes[@]}"; do ( for x in $l; do "$fn" "$x" || exit 1; done ) & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

# ---- 1. record: one job = <set>:<task>; sets are the conditions plus ood_cams and ood_noise -------------
noise_of() { case $1 in ood_cams) echo none ;; ood_noise) echo "$NOISE_OOD" ;; *) local v="NOISE_$1"; echo "${!v}" ;; esac; }
record() {
  local set=${1%%:*} task=${1#*:} dir n extra=()
  dir="$OUT/data/$set/$task"
  n=$EPISODES; case $set in ood_*) n=$OOD_EPISODES ;; esac
  [ "$set" = ood_cams ] && extra=(--camera-ood)
  local have=0 resume=()
  if [ -f "$dir/meta/info.json" ]; then
    have=$("$PY" -c "import json; print(json.load(open('$dir/meta/info.json'))['total_episodes'])"); resume=(--resume)
  fi
  [ "$have" -ge "$n" ] && return 0
  stamp "record $set/$task: $((n - have)) episodes, noise $(noise_of "$set")"
  $LAM record-sim --robot widowx --task "$task" --episodes "$((n - have))" --cameras third_person,side,wrist \
      --image-size "${IMAGE}x${IMAGE}" --randomize-cameras "${extra[@]}" --noise "$(noise_of "$set")" --seed 100 \
      "${resume[@]}" -o "$dir" >> "$OUT/logs/record_${set}_$task.log" 2>&1 \
      || { stamp "record $set/$task FAILED (see $OUT/logs/record_${set}_$task.log)"; return 1; }
}
JOBS_REC=()
OOD_SETS=""; [ -n "${OOD_SEEDS// /}" ] && OOD_SETS="ood_cams ood_noise"  # recorded only when some model is evaluated on them
for c in $CONDITIONS $OOD_SETS; do for t in $TASKS; do JOBS_REC+=("$c:$t"); done; done
in_lanes record "${JOBS_REC[@]}"
T_REC=$(( $(date +%s) - T0 ))
stamp "recording done (${T_REC}s)"
datasets_of() { local s="" t; for t in $TASKS; do s+="$OUT/data/$1/$t,"; done; echo "${s%,}"; }

# ---- 2. train + evaluate: one job = <condition>:<views>:<objective>:<seed> ---------------------------
cell() {
  IFS=: read -r cond views obj seed <<< "$1"
  local nv dir t1 name
  nv=$(awk -F, '{print NF}' <<< "$views")
  name="$cond/${nv}v/${obj//+/_}/s$seed"; dir="$OUT/runs/$name"; mkdir -p "$dir"
  local log="$OUT/logs/${name//\//_}"
  t1=$(date +%s)
  local cache=()  # a frozen trunk's features of a condition's frames, computed once for all its cells
  [ "$FEATURE" = effnet ] && cache=(--feature-cache "$OUT/data/$cond/trunk_features.safetensors")
  if [ ! -f "$dir/train_done" ]; then
    stamp "$name: train $STEPS steps"
    $LAM train-lam --dataset "$(datasets_of "$cond")" --views "$views" --objective "$obj" --frame-gap "$GAP" \
        --output "$dir" --steps "$STEPS" --batch-size "$BATCH" --seed "$seed" --holdout-frac "$HOLDOUT" \
        --save-every 100 --threads "$THREADS" --image-size "$IMAGE" --cpu --usage-decay "$USAGE_DECAY" --feature-source "$FEATURE" "${cache[@]}" \
        --resume >> "$log.train.log" 2>&1 || { stamp "$name: training FAILED (see $log.train.log)"; return 1; }
    echo "$(( $(date +%s) - t1 ))" > "$dir/train_done"
  fi
  local t2=$(date +%s)
  if [ ! -f "$dir/eval/eval.json" ]; then
    $LAM eval-lam --checkpoint "$dir/checkpoint" --dataset "$(datasets_of "$cond")" --views "$views" --split heldout \
        --output "$dir/eval" --mi-steps "$MI_STEPS" --eval-seeds "$EVAL_SEEDS" >> "$log.eval.log" 2>&1 \
        || { stamp "$name: eval FAILED (see $log.eval.log)"; return 1; }
  fi
  local t3=$(date +%s) ood
  for ood in ood_cams ood_noise; do
    [ -f "$dir/eval_$ood/eval.json" ] && continue
    grep -qw "$seed" <<< "$OOD_SEEDS" || continue
    $LAM eval-lam --checkpoint "$dir/checkpoint" --dataset "$(datasets_of "$ood")" --views "$views" --split all \
        --output "$dir/eval_$ood" --mi-steps "$OOD_MI_STEPS" --eval-seeds "$EVAL_SEEDS" >> "$log.eval.log" 2>&1 \
        || { stamp "$name: OOD eval $ood FAILED (see $log.eval.log)"; return 1; }
  done
  stamp "$name: done (train $(cat "$dir/train_done")s, eval $(( t3 - t2 ))s, OOD evals $(( $(date +%s) - t3 ))s)"
}
CELLS=()
# heaviest first (3 views, mvp+ac) so the lanes end at about the same time
for views in $(tr ' ' '\n' <<< "$VIEWSETS" | awk -F, '{print NF, $0}' | sort -rn | cut -d' ' -f2); do
  for obj in $(tr ' ' '\n' <<< "$OBJECTIVES" | awk '{print (index($0,"+")>0 ? 0 : 1), $0}' | sort -s -k1,1 | cut -d' ' -f2); do
    for seed in $TRAIN_SEEDS; do for cond in $CONDITIONS; do CELLS+=("$cond:$views:$obj:$seed"); done; done
  done
done
in_lanes cell "${CELLS[@]}"

# ---- 3. tables ------------------------------------------------------------------------------------
T_ALL=$(( $(date +%s) - T0 ))
"$PY" benchmarks/lam_experiment_table.py "$OUT" --record-seconds "$T_REC" --total-seconds "$T_ALL"
stamp "all done: record ${T_REC}s, total ${T_ALL}s; tables in $OUT/results.md"

#!/bin/bash
# Own-data nowcasting quality run: generate the rain-cell data (if missing), train
# configs/rain_cpu.yaml from scratch, evaluate its best checkpoint (best.ckpt: the epoch with the
# lowest validation B-MSE + B-MAE, the balanced loss's own score) on the held-out test split
# (never used to choose the recipe; that was done with eval.py --eval_split val) next to three
# baselines: zeros (no echo), persistence (copy_last) and optical-flow extrapolation.
#   bash bench/rain_quality.sh [OUTPUT_DIR] [--key value ...]
# Bar: the model's CSI above persistence's and extrapolation's at every threshold, and its HSS at the highest.
# Also prints the Fractions Skill Score (mean over lead frames) per threshold and neighbourhood scale.
OUTPUT_DIR=./output/rain_quality
case "$1" in
    -h|--help) echo "Usage: bash bench/rain_quality.sh [OUTPUT_DIR] [--key value ...]"; exit 0;;
    --*|"") ;;                      # no OUTPUT_DIR: the arguments are config overrides
    *) OUTPUT_DIR=$1; shift;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CONFIG="$ROOT/configs/rain_cpu.yaml"
DATA_DIR=${DATA_DIR:-$ROOT/data/rain}
START=$(date +%s)
if [ ! -f "$DATA_DIR/rain.npy" ]; then
    "$PYTHON" -m src.data.rain_cells "$DATA_DIR" || exit $?
fi
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG" --data_path "$DATA_DIR/rain.npy" --output_dir "$OUTPUT_DIR" \
    --overwrite true "$@" || exit $?
TRAINED=$(date +%s)
"$PYTHON" "$ROOT/eval.py" --ckpt_file "$OUTPUT_DIR/ckpt/best.ckpt" --output_dir "$OUTPUT_DIR/eval" || exit $?
END=$(date +%s)
"$PYTHON" - "$OUTPUT_DIR/eval/metrics.json" $((TRAINED - START)) $((END - START)) <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"\ndata + training: {int(sys.argv[2])} s, whole run: {int(sys.argv[3])} s; evaluated on {report['data']}")
rows = [("model", report)] + [(n, report["baselines"][n]) for n in ("copy_last", "extrapolation", "zeros")]
thresholds = [t["threshold"] for t in report["skill_scores"]["by_threshold"]]
head = "".join(f" CSI/POD/FAR/HSS >={t:g} |" for t in thresholds)
print(f"| predictor |{head} B-MSE | B-MAE |")
print("|---|" + "---|" * len(thresholds) + "---:|---:|")
fmt = lambda v: "-" if v is None else f"{v:.3f}"
for name, r in rows:
    skill = r["skill_scores"]
    cells = ["/".join(fmt(t["mean_over_lead_frames"][k]) for k in ("csi", "pod", "far", "hss"))
             for t in skill["by_threshold"]]
    print(f"| {name} | " + " | ".join(cells) + f" | {skill['balanced']['b_mse']:.1f} | {skill['balanced']['b_mae']:.1f} |")
best = {t: max(r["skill_scores"]["by_threshold"][k]["mean_over_lead_frames"]["csi"] or 0
               for n, r in rows[1:3]) for k, t in enumerate(thresholds)}
model = {t: report["skill_scores"]["by_threshold"][k]["mean_over_lead_frames"] for k, t in enumerate(thresholds)}
beats = all((model[t]["csi"] or 0) > best[t] for t in thresholds)
top = thresholds[-1]
best_hss = max(r["skill_scores"]["by_threshold"][-1]["mean_over_lead_frames"]["hss"] or 0 for n, r in rows[1:3])
print(f"model CSI above persistence and extrapolation at every threshold: {'yes' if beats else 'no'}; "
      f"HSS at {top:g}: {'yes' if (model[top]['hss'] or 0) > best_hss else 'no'}")
fss = report["skill_scores"].get("fss")
if fss:  # Fractions Skill Score: mean over lead frames per threshold and n x n neighbourhood (pixels)
    scales = "/".join(map(str, fss["scales"]))
    print(f"\n| predictor |" + "".join(f" FSS >={e['threshold']:g}, n={scales} |" for e in fss["by_threshold"]))
    print("|---|" + "---|" * len(fss["by_threshold"]))
    for name, r in rows:
        cells = ["/".join(fmt(s["mean_over_lead_frames"]["fss"]) for s in e["by_scale"])
                 for e in r["skill_scores"]["fss"]["by_threshold"]]
        print(f"| {name} | " + " | ".join(cells) + " |")
    useful = lambda e: "-" if e["smallest_useful_scale"] is None else e["smallest_useful_scale"]
    print("useful (FSS >= 0.5 + f0/2): " + "; ".join(
        f">={e['threshold']:g}: {e['uniform_fss']:.3f} (f0 {e['observed_fraction']:.4f}), model from n={useful(e)}"
        for e in fss["by_threshold"]))
PY

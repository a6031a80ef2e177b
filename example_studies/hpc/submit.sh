#!/bin/sh
# Queue the array (arguments go to its sbatch, e.g. --array=0-99 --time=1:00:00)
# and the merge job that runs once every task has ended, whatever their outcome.
set -e
cd "$(dirname "$0")"
array=$(sbatch --parsable "$@" array.sbatch)
merge=$(sbatch --parsable --dependency=afterany:"$array" merge.sbatch)
echo "array job $array, merge job $merge"

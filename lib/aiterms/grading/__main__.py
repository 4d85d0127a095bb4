"""``python -m aiterms.grading <folder>``: grade a class (what ``make grade`` runs)."""
from aiterms.grading.grade import main

main()

"""Title and abstract screening: criteria rules, active-learning prioritisation, reviewer
decisions, a statistical stopping rule and an ASReview-style simulation mode.

Modules, in the order a record meets them: `rules` (eligibility from the record alone),
`decisions` (reviewer CSVs, conflicts, kappa), `profile` and `model` (cold start and
ranking), `stopping` (when target recall is reached), `run` (the stage: screen_topic) and
`simulate` (replaying a labelled review).
"""

from cmosynth.screen.run import screen_topic
from cmosynth.screen.simulate import simulate_file

__all__ = ["screen_topic", "simulate_file"]

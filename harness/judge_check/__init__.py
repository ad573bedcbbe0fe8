"""`harness judge-check`: how far a judge agrees with the official AlpacaEval judge, its position
bias, noise and length bias, measured on published leaderboard runs and stored per judge identity.

published (the runs and their official verdicts) -> verdicts (judging both orders and repeats)
-> stats (figures with bootstrap intervals) -> stages (the check as a run) -> records (lookup
for views and labels) and summary (the printed text).
"""

"""The model card: MODEL_CARD.md for a run or a registered version, from the team's model_card.yaml
and what the run recorded in MLflow.

answers.py reads model_card.yaml (what only people know), facts.py reads the run (what the lineage
knows), render.py writes the markdown from the two, publish.py logs it to the run and the version,
command.py is the `model-card` CLI command. MLflow is imported when a card is made, not by the CLI's parser.
"""

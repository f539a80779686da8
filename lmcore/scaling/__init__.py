"""Big-model behaviour in miniature: scaling laws, emergence, in-context learning, chain of thought.

Each experiment is small enough for a laptop CPU: `sweep` trains ladders of tiny Transformers on
a corpus (loss against parameters, data and compute), `fit` fits power laws with bootstrap
intervals, `tasks` generates synthetic problems with exact answers, and `emergence`,
`induction`, `fewshot` and `chain_of_thought` train on them and measure what the note says.
"""

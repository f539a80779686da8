"""Training stages on one tiny model: pretraining, instruction tuning (SFT), preference tuning.

A large model is trained in three stages: next-token prediction on text (`lmcore.train`),
supervised fine-tuning on instructions with the loss on the response only (`sft.py`), and
preference tuning, here Direct Preference Optimization against a frozen reference (`dpo.py`).
The data of the last two stages is generated in code with checkable answers
(`instructions.py`, `preferences.py`) in a chat template with special tokens (`chat.py`).
"""

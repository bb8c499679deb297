"""The Trainer's stop path when a stop signal reaches the DataLoader workers before the training process."""

import pytest
import torch

from helpers import MemoryStore, tiny_model
from synermix.data.stream import Batch
from synermix.errors import Interrupted
from synermix.method.loss import SynerMixLoss
from synermix.seeding import RunSeeds
from synermix.train.trainer import Trainer, TrainOptions


class WorkersKilled:
    """A stream whose loader dies at step 2 (as a DataLoader does when SIGTERM reached its workers), after the
    trainer's own stop request when `signalled`."""

    def __init__(self, trainer_box, signalled: bool):
        self.box, self.signalled = trainer_box, signalled

    def __len__(self):
        return 4

    def epoch(self, epoch, start_step=0):
        g = torch.Generator().manual_seed(epoch)
        for step in range(start_step, 4):
            if step == 2:
                if self.signalled:
                    self.box[0].stop.request()
                raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated.")
            x = torch.randn(6, 4, generator=g)
            yield Batch(step, x, x + 0.1, torch.arange(6) % 3)


@pytest.mark.parametrize("signalled", [True, False])
def test_a_loader_killed_by_the_stop_signal_ends_the_run_with_a_checkpoint_and_any_other_failure_is_raised(signalled):
    model, store, box = tiny_model(), MemoryStore(), []
    saved = store.saved
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(
        model,
        SynerMixLoss("original", "mixup", 0.1, num_classes=3),
        optimizer,
        torch.optim.lr_scheduler.StepLR(optimizer, 1),
        TrainOptions(RunSeeds(0)),
        store=store,
    )
    box.append(trainer)
    if signalled:
        with pytest.raises(Interrupted, match="at epoch 1, step 2 of 4; checkpoint saved"):
            trainer.train(WorkersKilled(box, True), epochs=1)
        assert saved[-1]["partial"]["step"] == 2 and saved[-1]["epoch"] == 0
    else:
        with pytest.raises(RuntimeError, match="killed by signal"):
            trainer.train(WorkersKilled(box, False), epochs=1)
        assert not saved

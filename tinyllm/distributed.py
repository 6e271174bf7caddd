"""Several processes, one run: PyTorch's DistributedDataParallel, as torchrun starts it.

    torchrun --standalone --nproc_per_node=2 -m tinyllm train ...

torchrun starts N copies of the command and tells each, in environment
variables, its RANK (0 to N-1 over every machine), its LOCAL_RANK (its GPU on
its own machine) and the WORLD_SIZE (N). Every process holds the whole model.
At every step all of them draw the same global batch from the same seeded
generator and each takes its own rows of it; DistributedDataParallel (DDP)
averages their gradients during backward, so every process makes the same
update and the model stays the same everywhere. That is the one-process step
split by rows: the mean of N equal shares' mean gradients is the whole
batch's mean gradient.

Process 0 alone writes the run folder, evaluates and samples; the others only
train. A stop (Ctrl-C, SIGTERM, a STOP file) is agreed on before every step,
so all of them stop at the same one.

Started without torchrun (no WORLD_SIZE), a run is one process: nothing here
then calls PyTorch's distributed package or changes a number.
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from tinyllm.errors import TinyLLMError


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process's number; process 0 writes the run folder
    size: int = 1  # processes training together (torchrun's WORLD_SIZE)
    local_rank: int = 0  # this process's GPU on its machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "World":
        """What torchrun says (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""
        try:
            world = cls(*(int(os.environ.get(name, default)) for name, default in ENV))
        except ValueError:
            raise TinyLLMError(f"{', '.join(n for n, _ in ENV)} must be whole numbers (torchrun sets them).") from None
        if not 0 <= world.rank < world.size or world.local_rank < 0:
            raise TinyLLMError(f"RANK {world.rank} is not one of the WORLD_SIZE {world.size} processes.")
        return world

    # -- what each step needs ------------------------------------------------

    def rows(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's share of the global batch: rows rank*n to (rank+1)*n."""
        share = batch.shape[0] // self.size
        return batch[self.rank * share : (self.rank + 1) * share]

    def any(self, flag: bool) -> bool:
        """True on every process if it is True on any: a stop asked of one stops all, at this step."""
        if self.size == 1:
            return flag
        agreed = torch.tensor([int(flag)])  # on the CPU: gloo, no wait for a GPU
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        return bool(agreed.item())

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over the processes: the global batch's loss from its shares' losses."""
        if self.size == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)  # a sum: gloo has no mean
        return total / self.size

    def from_main(self, work):
        """Run work() on process 0 alone and hand its result, or its error, to
        every process: the run folder is read and checked by process 0 only."""
        if self.size == 1:
            return work()
        if not self.is_main:
            outcome = [None]
            dist.broadcast_object_list(outcome, src=0, device=torch.device("cpu"))
            kind, value = outcome[0]
            if kind == "error":
                raise TinyLLMError(value)
            return value
        try:
            value = work()
        except Exception as e:
            dist.broadcast_object_list([("error", str(e))], src=0, device=torch.device("cpu"))
            raise
        dist.broadcast_object_list([("ok", value)], src=0, device=torch.device("cpu"))
        return value

    def own_dropout(self, seed: int, step: int):
        """Each process drops its own rows' activations with its own random
        numbers; process 0 keeps the run's stream, so one process is a plain run."""
        if self.rank:
            torch.manual_seed((seed + 1_000_003 * self.rank + step) % 2**63)


ENV = (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0))  # field order of World


def check_batch(batch_size: int, world: World):
    if batch_size % world.size:
        raise TinyLLMError(
            f"--batch-size {batch_size} does not divide among {world.size} processes: it is the global batch, "
            f"split by rows between them; give a multiple of {world.size}."
        )


def device_for(device: str, world: World) -> str:
    """The device of this process: one GPU each (its LOCAL_RANK), or the CPU."""
    if world.size == 1:
        return device
    if device == "mps":
        raise TinyLLMError("Several processes train on CPUs (gloo) or CUDA GPUs (nccl), not on an Apple GPU (mps).")
    if device == "cuda":
        gpus = torch.cuda.device_count()
        if world.local_rank >= gpus:
            raise TinyLLMError(
                f"Process {world.rank} wants GPU {world.local_rank}, but this machine has {gpus}: start at most "
                f"{gpus} processes per machine (--nproc_per_node={gpus})."
            )
        torch.cuda.set_device(world.local_rank)
        return f"cuda:{world.local_rank}"
    return device


@contextmanager
def joined(world: World):
    """Join the other processes (torchrun's MASTER_ADDR and MASTER_PORT say
    where) for the duration of a run; nothing to join for one process.
    Collectives on CPU tensors go through gloo, on CUDA tensors through NCCL."""
    if world.size == 1:
        yield world
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    try:
        yield world
        # process 0 ends later (it writes the summary, samples, exports): without this wait a
        # process may tear its connections down while the other still uses them, and gloo aborts
        dist.barrier()
    finally:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: str) -> torch.nn.Module:
    """The model whose backward averages gradients over the processes (DDP), or the model itself."""
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    gpu = [torch.device(device).index] if device.startswith("cuda") else None
    # forward_sync_buffers=False: the only buffers (the causal mask) are the same everywhere
    return DistributedDataParallel(model, device_ids=gpu, forward_sync_buffers=False)


def is_main_process() -> bool:
    """For the command line, before or after a run: is this process 0 (or the only one)?"""
    return os.environ.get("RANK", "0") == "0"

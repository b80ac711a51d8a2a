"""Arguments shared by the commands that read a standard dataset (``--dataset ffpp ROOT``) or take a recipe
(``--recipe paper``, ``-c ftcn_tt.yaml``): one definition, so every command spells and resolves them alike."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any



def add_dataset_arguments(parser: argparse.ArgumentParser, kind_required: bool = False) -> None:
    from ftcn.datasets.standard import dataset_kinds

    group = parser.add_argument_group("standard datasets, read as they are on disk")
    group.add_argument("--dataset", dest="kind", choices=dataset_kinds(), required=kind_required,
                       help="the source is this dataset's downloaded folder (ffpp, celebdf, dfdc, dfo); its official "
                            "split is kept")
    group.add_argument("--compression", choices=["raw", "c23", "c40"],
                       help="FaceForensics++ compression (default c23, the paper's)")
    group.add_argument("--methods", help="FaceForensics++ methods, comma-separated (default: Deepfakes, Face2Face, "
                                         "FaceSwap, NeuralTextures; FaceShifter and DeepFakeDetection on request)")
    group.add_argument("--ffpp-root", type=Path, help="DeeperForensics: FaceForensics++'s folder (its reals)")
    group.add_argument("--variant", default="end_to_end", help="DeeperForensics: manipulated_videos/<variant>")
    group.add_argument("--splits-dir", type=Path, help="FaceForensics++: folder of train/val/test.json "
                                                       "(default ROOT/splits)")


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--recipe", choices=["paper"], help="the paper's training recipe: every hyper-parameter "
                                                           "and its source in the README; options given on the "
                                                           "command line still win")
    group.add_argument("-c", "--config", type=Path, help="an official setting file (ftcn_tt.yaml), read as the "
                                                         "reference scripts take it")


def chosen_recipe(args: argparse.Namespace) -> Any:
    """The recipe named by --recipe or -c, or None."""
    from ftcn.training.recipes import recipe, recipe_from_yaml

    if getattr(args, "config", None):
        return recipe_from_yaml(args.config)
    if getattr(args, "recipe", None):
        return recipe(args.recipe)
    return None


def resolve(args: argparse.Namespace, names: dict[str, Any], section: str, chosen: Any) -> dict[str, Any]:
    """Each name's value: given on the command line, else the recipe's, else its default."""
    from_recipe = getattr(chosen, section, {}) if chosen is not None else {}
    values = {}
    for name, default in names.items():
        given = getattr(args, name, None)
        values[name] = given if given is not None else from_recipe.get(name, default)
    return values


def dataset_options(args: argparse.Namespace, chosen: Any = None) -> Any:
    from ftcn.datasets.standard import DatasetOptions

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip()) if args.methods else None
    values = resolve(argparse.Namespace(compression=args.compression, methods=methods),
                     {"compression": "c23", "methods": ()}, "dataset", chosen)
    return DatasetOptions(compression=values["compression"], methods=tuple(values["methods"]),
                          ffpp_root=args.ffpp_root, variant=args.variant, splits_dir=args.splits_dir)


def print_recipe(chosen: Any) -> None:
    if chosen is None:
        return
    print(f"recipe {chosen.name}:")
    for name, value, source in chosen.table():
        shown = ", ".join(value) if isinstance(value, tuple) else value
        print(f"  {name} = {shown}  ({source})")
    for key in chosen.unused:
        print(f"  not used: {key} (the official training code that reads it was not released)")


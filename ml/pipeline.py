"""The model: one scikit-learn Pipeline from raw feature columns to a probability.

Numeric columns go to the tree as they are (scikit-learn trees route missing values
themselves, and thresholds stay in the column's own units, which keeps rules readable);
categorical columns are one-hot encoded, rare values grouped, missing values their own
category. The baseline logistic regression gets the same columns, imputed and scaled.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

MISSING = "(missing)"
MAX_CATEGORIES = 30


def _categories() -> Pipeline:
    return Pipeline(
        [
            ("fill", SimpleImputer(strategy="constant", fill_value=MISSING)),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=MAX_CATEGORIES,
                    sparse_output=False,
                ),
            ),
        ]
    )


def tree_pipeline(
    numeric: list[str], categorical: list[str], random_state: int, **tree_params
) -> Pipeline:
    features = ColumnTransformer(
        [("num", "passthrough", numeric), ("cat", _categories(), categorical)],
        verbose_feature_names_out=True,
    )
    tree = DecisionTreeClassifier(random_state=random_state, **tree_params)
    return Pipeline([("features", features), ("tree", tree)])


def logistic_pipeline(numeric: list[str], categorical: list[str], random_state: int) -> Pipeline:
    numbers = Pipeline([("fill", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    features = ColumnTransformer([("num", numbers, numeric), ("cat", _categories(), categorical)])
    model = LogisticRegression(max_iter=2000, random_state=random_state)
    return Pipeline([("features", features), ("logistic", model)])

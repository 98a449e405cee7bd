package apiserver

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
)

type fieldsSet = fields.Set

func isConflict(err error) bool { return apierrors.IsConflict(err) }
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

func isGone(err error) bool    { return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) }
func isInvalid(err error) bool { return apierrors.IsInvalid(err) }
